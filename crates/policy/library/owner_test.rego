package terrarium.policies.owner_test

import data.terrarium.policies.owner

test_an_owner_is_required if {
	count(owner.deny) == 1 with input as {"manifest": {"spec": {}}}
}

test_a_known_owner_passes if {
	count(owner.deny) == 0 with input as {"manifest": {"spec": {"owner": "user:ana"}}, "directory": {"owners": ["user:ana"]}}
}

test_an_unknown_owner_is_denied if {
	count(owner.deny) == 1 with input as {"manifest": {"spec": {"owner": "user:ghost"}}, "directory": {"owners": ["user:ana"]}}
}

test_offline_checks_skip_the_directory if {
	count(owner.deny) == 0 with input as {"manifest": {"spec": {"owner": "user:ghost"}}}
}
