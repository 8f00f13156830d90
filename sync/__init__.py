"""The sync daemon: turns Kubernetes Containers and Nodes into the mappings mountdns publishes."""
