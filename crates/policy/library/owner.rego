# Every app has an owner, and the owner is someone the platform knows.
package terrarium.policies.owner

deny contains msg if {
	not input.manifest.spec.owner
	msg := "spec.owner is missing: name the person (user:NAME) or team (group:NAME) who answers for the app"
}

# The directory is only known on the server; offline checks skip this part.
deny contains msg if {
	owner := input.manifest.spec.owner
	input.directory
	not owner in input.directory.owners
	msg := sprintf("spec.owner %s is not a known user or group; use an account that exists (terrarium users list)", [owner])
}
