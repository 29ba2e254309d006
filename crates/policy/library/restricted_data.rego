# Restricted data lives in an isolated database: an app labelled dataClass: restricted may keep
# SQL data only in a database of its own (spec.data.sql.isolation: isolated, the default).
package terrarium.policies.restricted_data

deny contains msg if {
	input.manifest.metadata.labels.dataClass == "restricted"
	isolation := object.get(input.manifest.spec.data.sql, "isolation", "isolated")
	isolation != "isolated"
	msg := sprintf("metadata.labels.dataClass is restricted, which needs spec.data.sql.isolation: isolated (it is %s)", [isolation])
}
