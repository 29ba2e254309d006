# Quotas within the namespace's tier; asking for more is an elevated request.
package terrarium.policies.quotas

quotas := object.get(input.manifest.spec, "quotas", {})

tier := object.get(object.get(input, "namespace", {}), "tier", {})

limits := {
	"requestsPerSecond": "maxAppRequestsPerSecond",
	"burst": "maxAppBurst",
	"concurrency": "maxAppConcurrency",
}

elevated contains msg if {
	some field, limit in limits
	asked := quotas[field]
	max := tier[limit]
	asked > max
	msg := sprintf("spec.quotas.%s %d is over the %d of the namespace's tier", [field, asked, max])
}
