package terrarium.policies.secrets_ref_test

import data.terrarium.policies.secrets_ref

app(ref) := {"manifest": {"metadata": {"namespace": "growth", "name": "lunch"}, "spec": {"secretsRef": ref}}}

test_own_path_passes if {
	count(secrets_ref.deny) == 0 with input as app("terrarium://growth/lunch")
	count(secrets_ref.deny) == 0 with input as app("vault://kv/growth/lunch")
}

test_another_apps_secrets_are_denied if {
	count(secrets_ref.deny) == 1 with input as app("terrarium://growth/payroll")
}

test_another_namespaces_vault_path_is_denied if {
	count(secrets_ref.deny) == 1 with input as app("vault://kv/finance/db")
}
