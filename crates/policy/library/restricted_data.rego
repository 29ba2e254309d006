# Restricted data lives in an isolated database: an app labelled restricted may keep SQL data
# only in a database of its own (spec.data.sql.isolation: isolated, the default).
package terrarium.policies.restricted_data

deny contains msg if {
	input.manifest.spec.dataClass == "restricted"
	isolation := object.get(input.manifest.spec.data.sql, "isolation", "isolated")
	isolation != "isolated"
	msg := sprintf("spec.dataClass is restricted, which needs spec.data.sql.isolation: isolated (it is %s)", [isolation])
}
