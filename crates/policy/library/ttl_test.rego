package terrarium.policies.ttl_test

import data.terrarium.policies.ttl

test_within_the_default_maximum if {
	count(ttl.deny) == 0 with input as {"manifest": {"spec": {"ttlDays": 90}}}
}

test_over_the_default_maximum if {
	count(ttl.deny) == 1 with input as {"manifest": {"spec": {"ttlDays": 91}}}
}

test_the_namespace_sets_the_maximum if {
	count(ttl.deny) == 1 with input as {"manifest": {"spec": {"ttlDays": 40}}, "namespace": {"maxTtlDays": 30}}
}

test_no_ttl_is_no_violation if {
	count(ttl.deny) == 0 with input as {"manifest": {"spec": {}}}
}
