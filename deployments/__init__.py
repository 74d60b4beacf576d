"""When and where flows run: the local server, served deployments, and starting runs for leads."""
