"""The service's configuration: `Settings`, read from `SME_*` environment variables and `.env` (config/settings.py).

It sits below the other packages (server, experts, optimize and tools all read it; it reads none of them), so
settings that are not the experts' own (HTTP, the local LM, client file access, paths) are not under experts/.
"""
