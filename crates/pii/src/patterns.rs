//! The patterns and word lists the detectors use. A pattern only finds candidates; the code in
//! `structured`, `address` and `person` decides (checksums, lengths, neighbouring words).
//! Placeholders in braces (`{FULL}`, `{ABBR}`, `{STATES}`, `{EU_TAIL}`) are filled in by
//! `Detector::new` before compiling.

/// Internationalised addresses too (RFC 6531: letters of any script in the local part and
/// the domain), so "jürgen@example.de" is found whole.
pub(crate) const EMAIL: &str = concat!(
    r"[\p{L}\p{N}](?:[\p{L}\p{N}._%+\-]*[\p{L}\p{N}_%+\-])?",
    r"@[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?)*",
    r"\.\p{L}{2,24}\b",
);

/// Runs of digits separated by single spaces or dashes (card candidates).
pub(crate) const DIGIT_GROUPS: &str = r"\b[0-9]+(?:[ \-][0-9]+)*\b";

/// Where an IBAN may start: country code, check digits, the first four BBAN characters.
pub(crate) const IBAN_START: &str = r"\b[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}";

pub(crate) const SSN: &str = r"\b[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}\b";
pub(crate) const SSN_BARE: &str = r"\b[0-9]{9}\b";
/// Words right before a bare nine-digit number that make it a social security number.
pub(crate) const SSN_CONTEXT: &str = concat!(
    r"(?i:\b(?:ssn|ss#|social security(?: number| no\.?| #)?|soc\.? sec\.?(?: no\.?)?)",
    r"\s*(?:number|no\.?|#)?\s*(?:is|was|:|=|-)?\s*)$",
);

pub(crate) const IPV4: &str = r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b";
/// A dotted quad right after one of these words is a version, not an address.
pub(crate) const VERSION_CONTEXT: &str = r"(?i:\b(?:version|ver\.?|v|build|release|firmware|fw|rev|revision)\s*)$";
/// Runs of hex digits, colons and dots with at least two colons; `Ipv6Addr` decides.
pub(crate) const IPV6: &str = r"[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*";

/// Provider tokens recognisable by their prefix.
pub(crate) const KNOWN_KEYS: &str = concat!(
    r"\b(?:sk-(?:proj-|svcacct-|admin-|ant-[a-z]+[0-9]{2}-)?[A-Za-z0-9_\-]{20,}",
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
    r"|gh[pousr]_[A-Za-z0-9]{36,}",
    r"|github_pat_[A-Za-z0-9_]{40,}",
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}",
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}",
    r"|AIza[A-Za-z0-9_\-]{35}",
    r"|glpat-[A-Za-z0-9_\-]{20,}",
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
    r"|npm_[A-Za-z0-9]{36}",
    r"|hf_[A-Za-z0-9]{30,}",
    r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",
    r"|dop_v1_[a-f0-9]{64}",
    r"|pypi-[A-Za-z0-9_\-]{50,}",
    r"|SK[0-9a-f]{32})",
);

/// A secret-sounding word, a separator, then the token (group 1); the token must also look
/// random (see `structured::looks_random`).
pub(crate) const GENERIC_KEY: &str = concat!(
    r"(?i:api[_\- ]?key|apikey|access[_\- ]?key(?:[_\- ]?id)?|secret[_\- ]?key|client[_\- ]?secret|secret",
    r"|auth[_\- ]?token|access[_\- ]?token|refresh[_\- ]?token|token|bearer|password|passwd|pwd",
    r#"|private[_\- ]?key)["']?\s*(?:[:=]|\bis\b|\s)\s*["']?([A-Za-z0-9_\-/+=.~]{16,200})"#,
);

/// Digit groups with the separators phone numbers use; `structured::phone_ok` decides.
pub(crate) const PHONE: &str = r"(?:\+ ?)?(?:\([0-9]{1,5}\)|[0-9]{1,5})(?:(?: ?\([0-9]{1,5}\) ?|[ .\-])?[0-9]{1,5})*";
/// Words shortly before a number that say it is a phone number.
pub(crate) const PHONE_CONTEXT: &str = concat!(
    r"(?i:\b(?:phone|tel|telephone|call|called|calling|mobile|mob|cell|cellphone|fax|whatsapp|sms|text|ring",
    r"|reach|dial|hotline|landline|contact)\b)",
);
/// Words right before a number that say it is something else (an order, a ticket, a code).
pub(crate) const PHONE_NEGATIVE: &str = concat!(
    r"(?i:\b(?:order|invoice|ticket|ref|reference|id|case|account|acct|tracking|serial|sku|part|model|isbn|po",
    r"|receipt|transaction|txn|confirmation|booking|member|policy|claim|shipment|parcel|item|product|version",
    r"|build|zip|postcode|postal code|code|pin|otp)\s*(?:#|no\.?|num\.?|number|nr\.?|id)?\s*[:#]?\s*)$",
);
pub(crate) const MONEY_BEFORE: &str = r"[$€£¥]\s*$";

pub(crate) const STREET_SUFFIX_FULL: &str = concat!(
    "Street|Avenue|Road|Boulevard|Lane|Drive|Court|Way|Place|Terrace|Parkway|Highway|Circle|Square",
    "|Crescent|Close|Grove|Gardens|Row|Mews|Hill|Alley|Trail|Plaza|Loop|Pike",
);
pub(crate) const STREET_SUFFIX_ABBR: &str = "St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Ter|Pkwy|Hwy|Cir|Sq|Cres|Trl";
pub(crate) const US_STATES: &str = concat!(
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY",
    "|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC",
);
/// ", 75001 Paris", ", 1015 CJ Amsterdam": a postcode and town after a European address.
pub(crate) const EU_TAIL: &str = r"(?:, (?:[0-9]{5}|[0-9]{4}(?: [A-Z]{2})?) \p{Lu}\p{Ll}+(?:[ \-]\p{Lu}\p{Ll}+)?)?";

/// "123 Main Street", "4567 N. Oak Ave., Apt 5B, Springfield, IL 62704",
/// "10 Downing Street, London SW1A 2AA".
pub(crate) const STREET_US: &str = concat!(
    r"\b[0-9]{1,5}[A-Za-z]?(?:-[0-9]{1,4})? ",
    r"(?:(?:N|S|E|W|North|South|East|West)\.? )?",
    r"(?:(?:[A-Z][a-z]+(?:['’\-][A-Za-z]+)?|[0-9]{1,3}(?:st|nd|rd|th)) ){1,3}?",
    r"(?:(?:{FULL})\b|(?:{ABBR})\b\.?)",
    r"(?: (?:NE|NW|SE|SW|N|S|E|W)\b)?",
    r"(?:,? (?:(?:Apartment|Apt|Suite|Ste|Unit|Floor|Fl|Room|Rm)\.? ?#?|#)[0-9A-Z][0-9A-Za-z\-]{0,5}\b)?",
    r"(?:,? [A-Z][a-z]+(?: [A-Z][a-z]+){0,2},? (?:{STATES})\b(?: [0-9]{5}(?:-[0-9]{4})?\b)?",
    r"|,? [A-Z][a-z]+(?: [A-Z][a-z]+)?,? [A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}\b)?",
);
/// "12 rue de Rivoli, 75001 Paris".
pub(crate) const STREET_FR: &str = concat!(
    r"\b[0-9]{1,4}(?: ?(?:bis|ter))?,? ",
    r"(?:rue|avenue|boulevard|bd|place|allée|chemin|impasse|quai|cours|route",
    r"|Rue|Avenue|Boulevard|Place|Allée|Chemin|Impasse|Quai|Cours|Route)",
    r" (?:de la |de l['’]|des |du |de |d['’]|la |le )?\p{Lu}[\p{L}'’]*",
    r"(?:[ \-](?:de |du |des |la |le )?\p{Lu}[\p{L}'’]*){0,3}",
    r"{EU_TAIL}",
);
/// "Calle Mayor 7", "Via Roma 10, 00184 Roma", "Rue de Rivoli 12". Group 1 is the first word
/// of the name ("Via Slack 3" is not an address).
pub(crate) const STREET_KEYWORD: &str = concat!(
    r"\b(?:Rue|Calle|C/|Avenida|Avda\.|Paseo|Plaza|Carrer|Via|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|Rua",
    r"|Travessa|Praça|Avinguda)",
    r"(?: (?:de la|de los|de las|del|de|dei|degli|delle|della|di|da|do|dos|das|des|du) | d['’]| dell['’]| l['’]| )",
    r"(\p{Lu}[\p{L}'’\-]*)(?: (?:di |de |del |da )?\p{Lu}[\p{L}'’\-]*){0,3},? [0-9]{1,4}[a-zA-Z]?\b",
    r"{EU_TAIL}",
);
/// "Hauptstraße 5", "Keizersgracht 123, 1015 CJ Amsterdam", "Berliner Straße 12".
pub(crate) const STREET_COMPOUND: &str = concat!(
    r"\b(?:\p{Lu}\p{L}*(?:straße|strasse|str\.|weg|allee|platz|gasse|damm|ufer|gracht|straat|laan|plein",
    r"|singel|steeg|dijk|gatan|vägen|veien)",
    r"|\p{Lu}\p{L}+ (?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Damm|Ufer|Ring)) ?[1-9][0-9]{0,3}[a-zA-Z]?\b",
    r"{EU_TAIL}",
);

/// Words for the person detector: letters, with inner apostrophes and hyphens.
pub(crate) const WORD: &str = r"\p{L}[\p{L}\p{M}]*(?:['’\-]\p{L}[\p{L}\p{M}]*)*";
pub(crate) const TITLE_BEFORE: &str = r"\b(?:Mr|Mrs|Ms|Mx|Dr|Prof|Miss|Sir|Dame)\.? $";
/// Right before a name: any capitalised words here are a name.
pub(crate) const STRONG_CONTEXT: &str = concat!(
    r"(?i:\b(?:my name is|name is|name:|full name:?|from:|dear|kontoinhaber:?|titulaire:?|titular:?|regards,",
    r"|sincerely,|signed,?|signed by|cardholder:?|card holder:?|account holder:?|beneficiary:?|patient:?",
    r"|recipient:?|contact person:?|employee:?)\s*)$",
);
/// Right before a name: a known given name alone, or two or three capitalised words, are a name.
pub(crate) const MEDIUM_CONTEXT: &str = concat!(
    r"(?i:\b(?:hi|hello|hey|thanks|thank you|cheers|best|contact|contacted|cc|ask|asked|spoke with|spoke to",
    r"|talked to|met with|met|meet|called|emailed|pinged|assigned to|reported by|approved by|created by",
    r"|reviewed by|i am|i'm|it's|it is|this is|customer|client|tenant|colleague|manager|agent|user|caller",
    r"|contractor|applicant|employee|by|and|bonjour|hola|hallo|ciao|salut|grüße an|gruß an|buongiorno|olá)",
    r"[,:]?\s*)$",
);
/// Right before a name: a known given name alone is a name.
pub(crate) const WEAK_CONTEXT: &str = r"(?i:\b(?:from|with|by|to|for|and|or|tell|told|ping|email|call)[,:]?\s*)$";
/// A greeting: one capitalised word after it, followed by a comma, is a name ("Hi Ravi,").
pub(crate) const GREETING_CONTEXT: &str =
    r"(?i:\b(?:hi|hello|hey|thanks|thank you|cheers|dear|bonjour|hola|hallo|ciao|salut|buongiorno|olá)[,!]?\s*)$";

/// Lower-case words inside names: "Ludwig van Beethoven", "Maria de la Cruz".
pub(crate) const PARTICLES: [&str; 20] = [
    "van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "du", "le", "la", "bin", "ibn", "ter",
    "ten", "al", "el",
];
pub(crate) const TITLES: [&str; 9] = ["Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "Miss", "Sir", "Dame"];
/// A known given name right after one of these is a place ("Santa Maria", "San Diego").
pub(crate) const PLACE_PREFIXES: [&str; 14] =
    ["San", "Santa", "Santo", "Saint", "St", "Sankt", "Fort", "Port", "Mount", "Lake", "Cape", "Los", "Las", "El"];

/// Capitalised words that are never part of a name: function words, greetings, calendar words,
/// titles, places, brands and the vocabulary of tickets and business text.
pub(crate) const STOP_WORDS: &str = "
I A An The And But Or If In On At To For From With By Of Is Are Was Were Be We You He She It They This That
These Those My Our Your His Her Their Its Me Us Them Hi Hello Hey Dear I'm I've I'll I'd It's I’m I’ve I’ll I’d It’s
Bonjour Hola Hallo Ciao Salut Buongiorno Olá Grüße Gruß Servus Moin Merci Danke Gracias Grazie Obrigado
Thanks Thank Please Regards Best Cheers Yes No Ok OK Okay Sincerely Kind Warm Good Morning Afternoon Evening Night
Welcome Sorry Note Update Re Fwd Subject Sent Cc
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August
September October November December Today Tomorrow Yesterday
Mr Mrs Ms Mx Dr Prof Miss Sir Dame Madam Mister Everyone All Team Folks Guys Colleagues Friends Customer Customers
Valued Hiring Manager Support Sales Billing Admin Administrator User Users Client Account Accounts Service Services
New Old North South East West Central Upper Lower Saint St San Santa Los Las Le La El Des Du Von Van De
York London Paris Berlin Madrid Rome Tokyo Amsterdam Munich Dublin Sydney Toronto Chicago Boston Seattle Francisco
Angeles Vegas Lisbon Vienna Prague Warsaw Zurich Geneva Brussels Milan
America American Europe European Asia Africa English French German Spanish Italian Chinese Indian Japanese
Apple Google Microsoft Amazon Netflix Slack Zoom Teams GitHub Stripe PayPal Visa Mastercard Uber Tesla Samsung Sony
Nike Adidas IKEA Windows Android Linux Office Excel Word Outlook Gmail Drive Chrome Firefox Safari Watch Pro Plus Air
Mini Ultra Cloud Premium Basic Free Enterprise Edition Version Release Beta Alpha
Street Avenue Road Lane Boulevard Square Park Hill Bridge Station Airport Hospital University College School Bank
Hotel Center Centre Museum Church Court Hall Tower House Building Floor Room Suite Unit Apt
Inc Ltd LLC Corp Co Company Group Holdings Foundation Institute Department Dept Ministry Council Agency Office
Product Management Marketing Engineering Finance Legal Security Operations Ops Research Design Data Quality Human
Resources HR IT QA API ID URL PDF CSV JSON Invoice Order Ticket Case Payment Refund Total Amount Balance Report
Summary Meeting Call Email Phone Mobile Address Name Date Time Status Error Warning Info Issue Bug Feature Request
Question Answer Help Contact About Home Settings Profile Login Sign Password Reset
Quarterly Annual Monthly Weekly Daily Revenue Growth Plan Project Roadmap Launch Review Christmas Easter
Thanksgiving Halloween Black Prime Day Series Model Type Class Level Stage Phase Step Part Chapter Section
Ask Meet Tell Invite Send Let Congratulations Congrats Ping Message Notify Remind Forward Reply
Later Also Then When Where What Why How Who Which While After Before Since Until Because However Meanwhile
First Last Full Middle Family Given Nickname Username Signed Caller Contractor Applicant Patient Tenant Employee
";

/// Capitalised words that make the words before them an organisation or a place, not a name
/// ("Wayne Enterprises", "Acme Support", "Maria Hospital").
pub(crate) const ORG_WORDS: &str = "
Team Support Inc Ltd LLC Corp Corporation Co Company Group Holdings Foundation Institute University College
School Hospital Clinic Bank Hotel Center Centre Museum Church Airport Station Street Avenue Road Lane Boulevard Drive
Square Park Bridge Tower Building Department Dept Ministry Council Agency Office Labs Systems Solutions Services
Technologies Partners Associates Consulting Studio Studios Media Networks Software Airlines Motors Pharmaceuticals
Insurance Capital Ventures Fund Trust Club Store Shop Restaurant Cafe Café Bakery Market Mall Watch Pro Plus Cloud
Desk Hub Platform App Apps Engine Suite Edition Series Stadium Arena Theatre Theater Gallery Library Law Legal
Enterprises Industries Traders Toys Zoo Brothers Sons International Global Digital Analytics Robotics
";
