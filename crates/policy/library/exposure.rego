# Public apps and personal data sent to AI models are elevated: a person approves them.
package terrarium.policies.exposure

elevated contains "spec.access.visibility is public: anyone on the internet can use the app" if {
	input.manifest.spec.access.visibility == "public"
}

elevated contains "spec.ai.pii is allow: personal data may reach AI models unmasked" if {
	input.manifest.spec.ai.pii == "allow"
}
