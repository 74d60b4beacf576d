"""sopflow's HTTP server: lead intake, engagement events and unsubscribe links, on FastAPI and uvicorn.

Prefect's open-source server has no incoming webhooks, so sopflow serves its own. `sopflow up`
runs it as a process of its own (`python -m sopflow.web`), so its answers never wait on Prefect.
"""
