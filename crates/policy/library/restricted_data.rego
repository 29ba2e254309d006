# Restricted data lives in an isolated database.
package terrarium.policies.restricted_data

deny contains msg if {
	input.manifest.spec.dataClass == "restricted"
	not input.manifest.spec.data.sql.isolation == "isolated"
	msg := "spec.dataClass is restricted, which needs spec.data.sql.isolation: isolated"
}
