# The runtime is one the platform approves (all supported ones unless the namespace narrows them).
package terrarium.policies.runtime

approved := object.get(object.get(input, "namespace", {}), "approvedRuntimes", ["static", "static+edge", "function"])

deny contains msg if {
	runtime := input.manifest.spec.runtime
	not runtime in approved
	msg := sprintf("spec.runtime %s is not approved here; use one of %s", [runtime, concat(", ", approved)])
}
