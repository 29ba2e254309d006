package terrarium.policies.restricted_data_test

import data.terrarium.policies.restricted_data

test_restricted_needs_isolation if {
	count(restricted_data.deny) == 1 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"sql": {"isolation": "shared"}}}}}
}

test_restricted_and_isolated_passes if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"sql": {"isolation": "isolated"}}}}}
}

test_internal_data_may_share if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "internal"}}}
}
