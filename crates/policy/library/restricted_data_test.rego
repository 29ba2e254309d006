package terrarium.policies.restricted_data_test

import data.terrarium.policies.restricted_data

test_restricted_needs_isolation if {
	count(restricted_data.deny) == 1 with input as {"manifest": {"metadata": {"labels": {"dataClass": "restricted"}}, "spec": {"data": {"sql": {"isolation": "shared"}}}}}
	count(restricted_data.deny) == 1 with input as {"manifest": {"metadata": {"labels": {"dataClass": "restricted"}}, "spec": {"data": {"sql": {"isolation": "schema"}}}}}
}

test_restricted_and_isolated_passes if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"metadata": {"labels": {"dataClass": "restricted"}}, "spec": {"data": {"sql": {"isolation": "isolated"}}}}}
	count(restricted_data.deny) == 0 with input as {"manifest": {"metadata": {"labels": {"dataClass": "restricted"}}, "spec": {"data": {"sql": {}}}}}
}

test_restricted_without_sql_passes if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"metadata": {"labels": {"dataClass": "restricted"}}, "spec": {"data": {"kv": true}}}}
	count(restricted_data.deny) == 0 with input as {"manifest": {"metadata": {"labels": {"dataClass": "restricted"}}, "spec": {}}}
}

test_other_classes_pass if {
	count(restricted_data.deny) == 0 with input as {"manifest": {"metadata": {"labels": {"dataClass": "internal"}}, "spec": {"data": {"sql": {"isolation": "shared"}}}}}
}
