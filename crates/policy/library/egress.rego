# Egress entries name hosts: no IP literals, no bare wildcards, no metadata or private hosts.
package terrarium.policies.egress

entries := object.get(input.manifest.spec, "allowedEgress", [])

# The host of an entry, without scheme and port (string functions only: they are fast).
after_scheme(entry) := parts[count(parts) - 1] if {
	parts := split(entry, "://")
}

host(entry) := lower(substring(rest, 0, indexof(rest, "]") + 1)) if {
	rest := after_scheme(entry)
	startswith(rest, "[")
}

host(entry) := trim_suffix(lower(split(rest, ":")[0]), ".") if {
	rest := after_scheme(entry)
	not startswith(rest, "[")
}

ip_literal(h) if startswith(h, "[")

# Dotted, decimal (2130706433) and octal spellings: digits and dots only.
ip_literal(h) if {
	h != ""
	trim(h, "0123456789.") == ""
}

# Hexadecimal spellings (0x7f000001, 0x7f.0.0.1).
ip_literal(h) if startswith(h, "0x")

deny contains msg if {
	some entry in entries
	ip_literal(host(entry))
	msg := sprintf("allowedEgress entry %q is an IP address; name the host instead, so the allow list survives address changes", [entry])
}

deny contains msg if {
	some entry in entries
	host(entry) in {"*", "*.*"}
	msg := sprintf("allowedEgress entry %q allows every host; list the hosts the app calls", [entry])
}

metadata_hosts := {"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"}

deny contains msg if {
	some entry in entries
	host(entry) in metadata_hosts
	msg := sprintf("allowedEgress entry %q is a cloud metadata service; apps may never call it", [entry])
}

deny contains msg if {
	some entry in entries
	h := host(entry)
	some suffix in {".local", ".localhost", ".internal", ".lan", ".home.arpa"}
	endswith(h, suffix)
	not h in metadata_hosts
	msg := sprintf("allowedEgress entry %q is a private host; internal services are reached through an operator-declared internal API", [entry])
}

deny contains msg if {
	some entry in entries
	host(entry) == "localhost"
	msg := sprintf("allowedEgress entry %q is this machine; apps may not call it", [entry])
}
