# Calling a host beyond the namespace's allowed list is elevated: a person approves it once
# per app and host, and the grant covers exactly that host.
package terrarium.policies.egress_hosts

import data.terrarium.policies.egress

# Only the server knows the namespace's list; offline checks skip this policy.
namespace_allowed := input.namespace.allowedEgress

covered(h) if {
	some pattern in namespace_allowed
	lower(pattern) == h
}

# `*.example.com` on the namespace's list covers `api.example.com` and `*.api.example.com`.
covered(h) if {
	some pattern in namespace_allowed
	startswith(pattern, "*.")
	endswith(h, lower(substring(pattern, 1, -1)))
}

elevated contains msg if {
	namespace_allowed
	some entry in egress.entries
	h := egress.host(entry)
	not covered(h)
	msg := sprintf("egress to %s, which is not on the namespace's allowed list", [h])
}
