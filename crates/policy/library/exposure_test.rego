package terrarium.policies.exposure_test

import data.terrarium.policies.exposure

test_org_visibility_is_not_elevated if {
	count(exposure.elevated) == 0 with input as {"manifest": {"spec": {"access": {"visibility": "org"}}}}
}

test_public_and_pii_are_elevated if {
	count(exposure.elevated) == 2 with input as {"manifest": {"spec": {"access": {"visibility": "public"}, "ai": {"pii": "allow"}}}}
}
