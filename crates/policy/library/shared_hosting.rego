# A wildcard over a shared-hosting domain (the Public Suffix List's private section: github.io,
# vercel.app, workers.dev, ...) reaches every site anyone publishes there, so the app could send
# its data to anyone: a person approves it, knowing that. The server lists such entries in
# input.egress.sharedHosting; the allow-list parser already refuses wildcards over public
# suffixes such as *.co.uk.
package terrarium.policies.shared_hosting

elevated contains msg if {
	some shared in input.egress.sharedHosting
	msg := sprintf("egress to %s: anyone can publish a site under %s, so this lets the app send data to anyone who does", [shared.entry, shared.suffix])
}
