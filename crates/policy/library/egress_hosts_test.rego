package terrarium.policies.egress_hosts_test

import data.terrarium.policies.egress_hosts

app(entries, allowed) := {"manifest": {"spec": {"allowedEgress": entries}}, "namespace": {"allowedEgress": allowed}}

test_hosts_on_the_namespace_list_pass if {
	count(egress_hosts.elevated) == 0 with input as app(["api.example.com", "https://maps.example.com:8443"], ["api.example.com", "*.example.com"])
}

test_a_new_host_is_elevated_by_name if {
	egress_hosts.elevated == {"egress to api.weather.dev, which is not on the namespace's allowed list"} with input as app(["api.example.com", "https://API.weather.dev:443"], ["api.example.com"])
}

test_a_wildcard_covers_subdomains_only if {
	count(egress_hosts.elevated) == 1 with input as app(["example.com", "a.example.com"], ["*.example.com"])
}

test_an_empty_namespace_list_elevates_every_host if {
	count(egress_hosts.elevated) == 2 with input as app(["a.dev", "b.dev"], [])
}

test_offline_without_namespace_settings_nothing_is_elevated if {
	count(egress_hosts.elevated) == 0 with input as {"manifest": {"spec": {"allowedEgress": ["a.dev"]}}}
}
