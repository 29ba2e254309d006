package terrarium.policies.egress_test

import data.terrarium.policies.egress

app(entries) := {"manifest": {"spec": {"allowedEgress": entries}}}

test_hostnames_pass if {
	count(egress.deny) == 0 with input as app(["api.example.com", "https://maps.example.com:8443", "*.example.com"])
}

test_ip_literals_are_denied if {
	count(egress.deny) == 2 with input as app(["10.1.2.3", "[2001:db8::1]:443"])
}

test_other_spellings_of_addresses_are_denied if {
	count(egress.deny) == 3 with input as app(["2130706433", "0x7f000001", "0177.0.0.1"])
}

test_a_trailing_dot_changes_nothing if {
	count(egress.deny) == 2 with input as app(["localhost.", "metadata.google.internal."])
}

test_bare_wildcards_are_denied if {
	count(egress.deny) == 1 with input as app(["*"])
}

test_metadata_and_private_hosts_are_denied if {
	count(egress.deny) == 3 with input as app(["metadata.google.internal", "printer.local", "localhost"])
}

test_no_egress_is_fine if {
	count(egress.deny) == 0 with input as {"manifest": {"spec": {}}}
}
