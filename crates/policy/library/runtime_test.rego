package terrarium.policies.runtime_test

import data.terrarium.policies.runtime

test_supported_runtimes_pass if {
	count(runtime.deny) == 0 with input as {"manifest": {"spec": {"runtime": "function"}}}
}

test_unapproved_runtime_is_denied if {
	count(runtime.deny) == 1 with input as {"manifest": {"spec": {"runtime": "container"}}}
	count(runtime.deny) == 1 with input as {"manifest": {"spec": {"runtime": "function"}}, "namespace": {"approvedRuntimes": ["static"]}}
}
