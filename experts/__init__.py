"""sme-mcp experts: settings, DSPy programs, LM chains and the ExpertService."""

import os

# LiteLLM fetches its model cost map from the internet at import unless told not to; any path into
# DSPy goes through this package first, so this runs before litellm is ever imported.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
