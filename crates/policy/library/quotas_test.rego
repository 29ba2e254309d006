package terrarium.policies.quotas_test

import data.terrarium.policies.quotas

test_within_the_tier if {
	count(quotas.elevated) == 0 with input as {"manifest": {"spec": {"quotas": {"requestsPerSecond": 10}}}, "namespace": {"tier": {"maxAppRequestsPerSecond": 100}}}
}

test_over_the_tier_is_elevated if {
	count(quotas.elevated) == 2 with input as {"manifest": {"spec": {"quotas": {"requestsPerSecond": 500, "concurrency": 64}}}, "namespace": {"tier": {"maxAppRequestsPerSecond": 100, "maxAppConcurrency": 32}}}
}

test_no_tier_no_limit if {
	count(quotas.elevated) == 0 with input as {"manifest": {"spec": {"quotas": {"requestsPerSecond": 500}}}}
}
