package terrarium.policies.shared_hosting_test

import data.terrarium.policies.shared_hosting

test_a_shared_hosting_wildcard_is_elevated_and_says_why if {
	shared_hosting.elevated == {"egress to *.github.io: anyone can publish a site under github.io, so this lets the app send data to anyone who does"} with input as {"egress": {"sharedHosting": [{"entry": "*.github.io", "suffix": "github.io"}]}}
}

test_nothing_shared_nothing_elevated if {
	count(shared_hosting.elevated) == 0 with input as {"egress": {"sharedHosting": []}}
	count(shared_hosting.elevated) == 0 with input as {"manifest": {"spec": {}}}
}
