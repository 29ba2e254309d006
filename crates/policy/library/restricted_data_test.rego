package terrarium.policies.restricted_data_test

import data.terrarium.policies.restricted_data

test_restricted_needs_isolation if {
	count(restricted_data.deny) == 1 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"sql": {"isolation": "shared"}}}}}
	count(restricted_data.deny) == 1 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"sql": {"isolation": "schema"}}}}}
}

test_restricted_and_isolated_passes if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"sql": {"isolation": "isolated"}}}}}
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"sql": {}}}}}
}

test_restricted_without_sql_passes if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "restricted", "data": {"kv": true}}}}
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "restricted"}}}
}

test_other_classes_pass if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"spec": {"dataClass": "internal", "data": {"sql": {"isolation": "shared"}}}}}
}
