# An app lives at most the namespace's maximum TTL (90 days unless the namespace says otherwise).
package terrarium.policies.ttl

max_days := object.get(object.get(input, "namespace", {}), "maxTtlDays", 90)

deny contains msg if {
	days := input.manifest.spec.ttlDays
	days > max_days
	msg := sprintf("spec.ttlDays is %d, over the %d days this namespace allows; renew the app by deploying again before it expires", [days, max_days])
}
