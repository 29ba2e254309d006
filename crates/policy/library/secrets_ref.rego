# An app's secretsRef points under its own path.
package terrarium.policies.secrets_ref

meta := input.manifest.metadata

deny contains msg if {
	ref := input.manifest.spec.secretsRef
	startswith(ref, "terrarium://")
	ref != sprintf("terrarium://%s/%s", [meta.namespace, meta.name])
	msg := sprintf("spec.secretsRef %q names another app's secrets; write terrarium://%s/%s", [ref, meta.namespace, meta.name])
}

deny contains msg if {
	ref := input.manifest.spec.secretsRef
	startswith(ref, "vault://")
	parts := split(trim_prefix(ref, "vault://"), "/")
	not parts[1] == meta.namespace
	msg := sprintf("spec.secretsRef %q is outside this namespace's part of Vault; write vault://%s/%s/...", [ref, parts[0], meta.namespace])
}
