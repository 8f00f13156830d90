"""PowerDNS remote backend (HTTP connector) answering from the mountdns Redis keyspace."""
