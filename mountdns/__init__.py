"""mountdns: stable DNS names for containers, shared by the sync daemon and the PowerDNS backend."""
