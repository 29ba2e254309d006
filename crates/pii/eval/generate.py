#!/usr/bin/env python3
"""Writes eval.jsonl: a synthetic, seeded evaluation set for the `pii` crate.

Each line is {"text": ..., "entities": [{"type": ..., "start": ..., "end": ...}, ...]} with
character offsets (Unicode scalar values, end exclusive). Sentences are assembled from templates
whose slots are filled with generated values; the generator records each entity's span as it
inserts it, so the labels follow the span conventions in README.md by construction.

Run from anywhere: `python3 crates/pii/eval/generate.py`. The output is deterministic.
"""

import base64
import ipaddress
import json
import os
import re
import string
import unicodedata

import random

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240611
LINES = 600
NEGATIVE_SHARE = 0.30

rng = random.Random(SEED)


def pick(seq):
    return rng.choice(seq)


# --------------------------------------------------------------------------------------------
# Names. Given names come from the detector's gazetteer AND from a second pool that is not in
# it, so PERSON recall is measured on names the detector has never seen.
# --------------------------------------------------------------------------------------------

def load_gazetteer():
    path = os.path.join(HERE, "..", "src", "first_names.txt")
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.append(line)
    return names


GAZETTEER = load_gazetteer()

UNSEEN_GIVEN = """Oluwaseun Thandiwe Bartholomew Siobhan Niamh Tadhg Caoimhe Ruairi Bronwyn Gwendolyn Ezekiel
Thaddeus Cornelius Ignatius Leopold Evangeline Ottilie Wilhelmina Bogumił Radosław Zbigniew Svetozar Vesna
Dragana Yevgeny Anastasios Dimitrios Eleni Georgios Konstantinos Ioanna Panagiotis Kalani Aroha Wiremu Tamati
Minh Thanh Huong Tuan Quang Linh Phuong Somchai Siriporn Nattapong Budi Siti Agus Dewi Kourosh Farhad Golnaz
Avraham Yitzhak Tamar Eitan Yael Juma Zawadi Neema Abebe Tigist Selam Maricel Zsolt Gábor Zsófia Csaba Ildikó
Juha Jukka Aino Tuomas Päivi Guðrún Sigurður Iñaki Itziar Aitor Rhys Gethin Cerys Dafydd Hamish Morag Ailsa
Mihai Andreea Ionuț Cosmin Lavinia Teodora Ljubica Branimir Mirela Arnav Rohan Tejas Saanvi Ishani Kabir
Ayaan Nandini Chinonso Obinna Adaeze Folake Kehinde Taiwo Nomvula Lwazi Mpho Kagiso Tsegaye Liya Dawit
Fenna Jelte Wouter Hidde Sjoerd Berend Roosmarijn Floortje Ebba Signe Torvald Leif Solveig Ragnhild""".split()

SURNAMES = """Garcia Smith Müller Rossi Nguyen Kim Patel Sharma Okafor Kowalski Dubois Martin Schmidt Fernández
López Raman Iyer Chen Wang Zhang Tanaka Suzuki Sato Haddad Novak Horvat Ivanova Petrov Jensen Hansen Andersson
Johansson O'Brien McDonald Murphy Kelly Walsh Brown Johnson Williams Jones Miller Davis Wilson Anderson Taylor
Moore Jackson White Harris Clark Lewis Robinson Walker Young Allen Wright Green Baker Adams Nelson Campbell
Mitchell Roberts Carter Phillips Evans Turner Torres Parker Collins Edwards Stewart Morris Rogers Reed Cook
Morgan Bell Cooper Richardson Cox Howard Ward Peterson Gray Ramirez Watson Brooks Sanders Price Bennett Wood
Barnes Ross Henderson Coleman Jenkins Perry Powell Patterson Hughes Flores Butler Simmons Foster Gonzales
Bryant Russell Griffin Diaz Hayes Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter
Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hartmann Lange Bianchi Romano Colombo Ricci Marino
Greco Gallo Conti Esposito Ferrari Moreau Lefebvre Leroy Roux Bertrand Morel Fournier Girard Bonnet Dupont
Lambert Fontaine Rousseau Blanc Guerin Boyer Garnier Chevalier Sánchez Pérez Gómez Jiménez Ruiz Hernández
Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Ramos Serrano Molina Ortiz Delgado Castro Suárez
Santos Oliveira Souza Costa Pereira Almeida Ferreira Rodrigues Gupta Singh Kumar Reddy Nair Menon Pillai Rao
Joshi Mehta Desai Kapoor Malhotra Chopra Banerjee Chatterjee Mukherjee Bose Liu Yang Huang Zhao Zhou Xu
Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Park Lee Choi Jung Kang Yoon Jang Khan Rahman Hussain
Abbas Mansour Nasser Saleh Aziz Yilmaz Kaya Demir Şahin Çelik Öztürk Nowak Wiśniewski Wójcik Kamiński
Lewandowski Zieliński Dvořák Svoboda Novotný Kovač Popescu Ionescu Papadopoulos Nikolaidis Kuznetsov Smirnov
Popov Sokolov Lebedev Kozlov Morozov Volkov Adeyemi Okonkwo Mensah Asante Mwangi Otieno Dlamini Nkosi Janssen
Bakker Visser Smit Meijer Mulder Bos Vos Peters Hendriks Dekker Hill Long""".split()

# Family names the detector's own list (src/last_names.txt) does not have: checked below.
UNSEEN_SURNAMES = """Abernathy Quispe Mamani Huaman Ccori Tupa Achterberg Oosterhuis Zwanenburg Haugland Bjørnstad Kvist
Szczepański Przybylski Gąsiorowski Ntuli Mabaso Okwuosa Eberechukwu Ayodeji Nwachukwu Adjei Kuffour Rakotomalala
Andrianarivo Tsvangirai Ruhweza Nakato Ssempala Kaczmarczyk Vaitkus Kalniņš Tamm Saar Põld Mägi Gunnarsdóttir
Thorsteinsson Halvorsen Varela Echeverría Arrieta Goikoetxea Ugarte Llorente Sepúlveda Valenzuela Zúñiga Arancibia
Villalobos Quintero Barrientos Ancelotti Buffon Scamarcio Tagliaferri Bortolotti Castellucci Pelletier Thibodeau
Beauchamp Gagnon Tremblay Bouchard Desjardins Lachance Trudeau Whitlock Ashworth Pemberton Fairweather Hargreaves
Blackwood Thistlethwaite Featherstone Abeysekera Wickramasinghe Jayawardena Ratnayake Bandaranaike Sithole
Tshabalala Kurosawa Hoshino Takeuchi Nakajima Miyazaki Yoshikawa Onishi Hirano Kuroda Matsushita Nakano""".split()

PARTICLE_SURNAMES = ["van der Berg", "de Vries", "van Dijk", "de Jong", "da Silva", "dos Santos", "de la Cruz",
                     "von Essen", "al-Rashid", "el-Amin", "di Stefano", "del Rio", "van den Broek", "de Souza"]
HYPHEN_GIVEN = ["Jean-Luc", "Anna-Lena", "Mary-Kate", "Hans-Peter", "Marie-Claire", "Jean-Pierre",
                "Karl-Heinz", "Ana-Maria", "Eun-ji", "Seo-yeon"]
TITLES = ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Mr", "Dr"]

gaz_set = set(GAZETTEER)
assert not (set(UNSEEN_GIVEN) & gaz_set), set(UNSEEN_GIVEN) & gaz_set


def load_lines(name):
    with open(os.path.join(HERE, "..", "src", name), encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


_known_last = load_lines("last_names.txt")
assert not (set(UNSEEN_SURNAMES) & _known_last), set(UNSEEN_SURNAMES) & _known_last


def given_name():
    # About a third of the given names are not in the detector's gazetteer.
    if rng.random() < 0.33:
        return pick(UNSEEN_GIVEN)
    return pick(GAZETTEER)


def surname():
    r = rng.random()
    if r < 0.07:
        return pick(PARTICLE_SURNAMES)
    if r < 0.37:
        return pick(UNSEEN_SURNAMES)
    return pick(SURNAMES)


def full_name():
    r = rng.random()
    if r < 0.06:
        return pick(HYPHEN_GIVEN) + " " + surname()
    if r < 0.12:
        return given_name() + " " + given_name() + " " + surname()
    return given_name() + " " + surname()


# Segments: a slot expands to a list of (text, label-or-None).

def seg_person():
    r = rng.random()
    if r < 0.10:
        return [(pick(TITLES) + " ", None), (surname(), "PERSON")]
    if r < 0.18:
        return [(pick(TITLES) + " ", None), (full_name(), "PERSON")]
    return [(full_name(), "PERSON")]


def seg_fullname():
    return [(full_name(), "PERSON")]


def seg_first():
    return [(given_name(), "PERSON")]


# --------------------------------------------------------------------------------------------
# Emails
# --------------------------------------------------------------------------------------------

DOMAINS = ["example.com", "example.org", "mail.example.net", "acme-corp.com", "gmail.com", "outlook.com",
           "proton.me", "company.co.uk", "uni-berlin.de", "startup.io", "fastmail.fm", "web.de", "orange.fr",
           "libero.it", "yahoo.co.jp", "hospital.example", "shop.example.com"]
ROLE_LOCALS = ["support", "billing", "hr", "info", "jobs", "security", "noreply", "sales", "team.lead",
               "ops-oncall", "dev+alerts"]

def ascii_fold(s):
    s = s.lower().replace("ß", "ss").replace("ł", "l").replace("ð", "d").replace("þ", "th").replace("ø", "o")
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


def email_value():
    value = plain_email()
    if rng.random() < 0.08:
        local, domain = value.split("@")
        value = ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    return value


def plain_email():
    r = rng.random()
    if r < 0.15:
        local = pick(ROLE_LOCALS)
    else:
        first = re.sub(r"[^a-z]", "", ascii_fold(given_name())) or "user"
        last = re.sub(r"[^a-z]", "", ascii_fold(pick(SURNAMES))) or "x"
        local = pick([f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{first}{rng.randint(1, 99)}",
                      f"{first}.{last}+{pick(['billing', 'news', 'work'])}", f"{last}.{first[0]}"])
    return local + "@" + pick(DOMAINS)


def seg_email():
    return [(email_value(), "EMAIL_ADDRESS")]


# --------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------

def d(n):
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def d1(n):
    return str(rng.randint(2, 9)) + d(n - 1)


def phone_value():
    area, exch, line = d1(3), pick(["555", d1(3)]), d(4)
    formats = [
        lambda: f"({area}) {exch}-{line}",
        lambda: f"{area}-{exch}-{line}",
        lambda: f"{area}.{exch}.{line}",
        lambda: f"+1 {area} {exch} {line}",
        lambda: f"+1 ({area}) {exch}-{line}",
        lambda: f"+1-{area}-{exch}-{line}",
        lambda: f"1-800-{exch}-{line}",
        lambda: f"+44 20 {d(4)} {d(4)}",
        lambda: f"+44 (0)20 {d(4)} {d(4)}",
        lambda: f"020 {d(4)} {d(4)}",
        lambda: f"07700 {d(6)}",
        lambda: f"+44 7700 {d(6)}",
        lambda: f"+49 30 {d(6)}",
        lambda: f"+49 151 {d(8)}",
        lambda: f"030 {d(6)}",
        lambda: f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"+31 20 {d(3)} {d(4)}",
        lambda: f"06-{d(8)}",
        lambda: f"+34 612 {d(2)} {d(2)} {d(2)}",
        lambda: f"+39 06 {d(4)} {d(4)}",
        lambda: f"+91 98{d(3)} {d(5)}",
        lambda: f"+86 138 {d(4)} {d(4)}",
        lambda: f"+81 3-{d(4)}-{d(4)}",
        lambda: f"+61 2 {d(4)} {d(4)}",
        lambda: f"+55 11 9{d(4)}-{d(4)}",
        lambda: f"+7 495 {d(3)}-{d(2)}-{d(2)}",
        lambda: f"+353 1 {d(3)} {d(4)}",
        lambda: f"+41 44 {d(3)} {d(2)} {d(2)}",
        lambda: f"0044 20 {d(4)} {d(4)}",
        lambda: f"(020) {d(4)} {d(4)}",
        lambda: f"+44 (0) 20 {d(4)} {d(4)}",
        lambda: f"0800 {d(3)} {d(4)}",
        lambda: f"+49 (0)30 {d(6)}",
        lambda: f"+1.{area}.{exch}.{line}",
    ]
    return pick(formats)()


def seg_phone():
    return [(phone_value(), "PHONE_NUMBER")]


def seg_us_phone():
    area, exch, line = d1(3), pick(["555", d1(3)]), d(4)
    return [(pick([f"({area}) {exch}-{line}", f"{area}-{exch}-{line}", f"+1 {area} {exch} {line}"]),
             "PHONE_NUMBER")]


def seg_phone_ext():
    # The extension is not part of the number's span.
    area, line = d1(3), d(4)
    return [(f"+1 {area}-555-{line}", "PHONE_NUMBER"), (f" ext. {rng.randint(10, 999)}", None)]


def seg_tel_uri():
    return [("tel:", None), (f"+1{d1(3)}555{d(4)}", "PHONE_NUMBER")]


def seg_local_phone():
    return [(f"555-{d(4)}", "PHONE_NUMBER")]


def seg_bare_phone():
    # Ten digits with no separators: only a phone because of the words around it.
    return [(d1(3) + "555" + d(4), "PHONE_NUMBER")]


# --------------------------------------------------------------------------------------------
# Cards, IBANs, SSNs
# --------------------------------------------------------------------------------------------

def luhn_complete(prefix, length):
    body = prefix + d(length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(body)):
        v = int(ch)
        if i % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return body + str((10 - total % 10) % 10)


def card_digits():
    brand = pick(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb", "diners"])
    if brand == "visa":
        return luhn_complete("4", 16), [4, 4, 4, 4]
    if brand == "mc":
        return luhn_complete(str(rng.randint(51, 55)), 16), [4, 4, 4, 4]
    if brand == "mc2":
        return luhn_complete(str(rng.randint(2221, 2720)), 16), [4, 4, 4, 4]
    if brand == "amex":
        return luhn_complete(pick(["34", "37"]), 15), [4, 6, 5]
    if brand == "discover":
        return luhn_complete("6011", 16), [4, 4, 4, 4]
    if brand == "jcb":
        return luhn_complete(str(rng.randint(3528, 3589)), 16), [4, 4, 4, 4]
    return luhn_complete(pick(["36", "38"]), 14), [4, 6, 4]


def group(digits, sizes, sep):
    out, i = [], 0
    for s in sizes:
        out.append(digits[i:i + s])
        i += s
    return sep.join(out)


def card_value():
    digits, sizes = card_digits()
    r = rng.random()
    if r < 0.45:
        return group(digits, sizes, " ")
    if r < 0.70:
        return group(digits, sizes, "-")
    return digits


def seg_card():
    return [(card_value(), "CREDIT_CARD")]


def iban_check(country, bban):
    s = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in s)
    return "%02d" % (98 - int(num) % 97)


def iban_value():
    country = pick(["DE", "GB", "FR", "NL", "ES", "IT", "DE", "GB"])
    if country == "DE":
        bban = d(8) + d(10)
    elif country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + d(6) + d(8)
    elif country == "FR":
        bban = d(5) + d(5) + d(11) + d(2)
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + d(10)
    elif country == "ES":
        bban = d(20)
    else:
        bban = rng.choice(string.ascii_uppercase) + d(5) + d(5) + d(12)
    iban = country + iban_check(country, bban) + bban
    if rng.random() < 0.6:
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban


def seg_iban():
    return [(iban_value(), "IBAN_CODE")]


def ssn_digits():
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return "%03d" % area, "%02d" % rng.randint(1, 99), "%04d" % rng.randint(1, 9999)


def seg_ssn():
    a, g, s = ssn_digits()
    sep = "-" if rng.random() < 0.85 else " "
    return [(a + sep + g + sep + s, "US_SSN")]


def seg_ssn_bare():
    a, g, s = ssn_digits()
    return [(a + g + s, "US_SSN")]


# --------------------------------------------------------------------------------------------
# IP addresses
# --------------------------------------------------------------------------------------------

def ipv4_value():
    kind = rng.random()
    if kind < 0.3:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind < 0.45:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return ".".join(str(x) for x in [rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255),
                                     rng.randint(1, 254)])


def ipv6_value():
    kind = rng.random()
    if kind < 0.35:
        groups = [rng.randint(0, 0xFFFF) for _ in range(8)]
        groups[0] = rng.choice([0x2001, 0x2a02, 0x2600, 0x2a00, 0x2c0f])
        return ":".join("%x" % g for g in groups)
    if kind < 0.65:
        addr = ipaddress.IPv6Address("2001:db8::" + "%x:%x" % (rng.randint(1, 0xFFFF), rng.randint(1, 0xFFFF)))
        return str(addr)
    if kind < 0.9:
        tail = ":".join("%x" % rng.randint(1, 0xFFFF) for _ in range(4))
        return str(ipaddress.IPv6Address("fe80::" + tail))
    return "::1"


def seg_ip():
    return [(ipv4_value() if rng.random() < 0.7 else ipv6_value(), "IP_ADDRESS")]


def seg_ipv4():
    return [(ipv4_value(), "IP_ADDRESS")]


def seg_ipv6():
    return [(ipv6_value(), "IP_ADDRESS")]


def seg_ip_port():
    # Ports, prefix lengths and brackets are not part of the address's span.
    r = rng.random()
    if r < 0.4:
        return [(ipv4_value(), "IP_ADDRESS"), (":" + pick(["8080", "443", "22", "5432"]), None)]
    if r < 0.7:
        return [(f"10.{rng.randint(0, 255)}.0.0", "IP_ADDRESS"), ("/" + pick(["16", "24"]), None)]
    return [("[", None), (ipv6_value(), "IP_ADDRESS"), ("]:" + pick(["8443", "443"]), None)]


def seg_lower_first():
    # Chat often drops capitals; a human still marks the name.
    return [(ascii_fold(given_name()), "PERSON")]


def seg_upper_name():
    return [(full_name().upper(), "PERSON")]


# --------------------------------------------------------------------------------------------
# API keys and secrets
# --------------------------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


def rand(chars, n):
    s = "".join(rng.choice(chars) for _ in range(n))
    # Keys in the wild end in a letter or digit; so do ours (a trailing '-' would be ambiguous).
    return s[:-1] + rng.choice(ALNUM) if s[-1] not in ALNUM else s


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def jwt_value():
    header = b64url({"alg": "HS256", "typ": "JWT"})
    payload = b64url({"sub": str(rng.randint(1000, 99999)), "name": "user", "iat": rng.randint(1600000000, 1800000000)})
    return header + "." + payload + "." + rand(URLSAFE, 43)


def known_key():
    kind = pick(["openai", "openai_proj", "anthropic", "stripe", "stripe", "github", "github_pat", "slack", "aws",
                 "google", "gitlab", "jwt", "sendgrid", "npm", "hf", "shopify"])
    if kind == "openai":
        return "sk-" + rand(ALNUM, 48)
    if kind == "openai_proj":
        return "sk-proj-" + rand(URLSAFE, rng.randint(40, 64))
    if kind == "anthropic":
        return "sk-ant-api03-" + rand(URLSAFE, 80) + "AA"
    if kind == "stripe":
        return pick(["sk_live_", "rk_live_", "sk_test_", "pk_live_"]) + rand(ALNUM, rng.randint(24, 40))
    if kind == "github":
        return pick(["ghp_", "gho_", "ghs_"]) + rand(ALNUM, 36)
    if kind == "github_pat":
        return "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)
    if kind == "slack":
        return pick(["xoxb-", "xoxp-"]) + d(11) + "-" + d(12) + "-" + rand(ALNUM, 24)
    if kind == "aws":
        return "AKIA" + rand(string.ascii_uppercase + string.digits, 16)
    if kind == "google":
        return "AIza" + rand(URLSAFE, 35)
    if kind == "gitlab":
        return "glpat-" + rand(URLSAFE, 20)
    if kind == "jwt":
        return jwt_value()
    if kind == "sendgrid":
        return "SG." + rand(URLSAFE, 22) + "." + rand(URLSAFE, 43)
    if kind == "npm":
        return "npm_" + rand(ALNUM, 36)
    if kind == "hf":
        return "hf_" + rand(ALNUM, 34)
    return "shpat_" + rand(HEX, 32)


def seg_key():
    return [(known_key(), "API_KEY")]


def generic_secret():
    while True:
        s = rand(pick([ALNUM, ALNUM, HEX, URLSAFE]), rng.randint(24, 48))
        if any(c.isdigit() for c in s) and any(c.isalpha() for c in s):
            return s


def seg_secret_assign():
    lead = pick(["api_key=", "API_KEY = ", "apiKey: ", "client_secret: ", "SECRET_KEY=", "access_token=",
                 "auth_token: ", "the API key is ", "token: ", "X-Api-Key: ", "secret = "])
    quote = pick(["", "", "\"", "'"]) if lead.endswith(("=", ": ", "= ")) else ""
    return [(lead + quote, None), (generic_secret(), "API_KEY"), (quote, None)]


def seg_bearer():
    return [("Bearer ", None), (pick([generic_secret(), jwt_value()]), "API_KEY")]


# --------------------------------------------------------------------------------------------
# Street addresses
# --------------------------------------------------------------------------------------------

US_STREETS = ["Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Sunset", "Highland", "Ridge",
              "Mill", "Jefferson", "Lincoln", "Jackson", "Franklin", "Market", "Mission", "Valencia", "Chestnut",
              "Walnut", "Willow", "Birch", "Magnolia", "Cherry Blossom", "Old Mill", "Pennsylvania", "Peachtree",
              "Sycamore", "Hickory", "5th", "42nd", "3rd", "21st", "Fairview", "Lakeshore", "Riverside"]
US_SUFFIX = ["Street", "St.", "St", "Avenue", "Ave.", "Ave", "Road", "Rd.", "Boulevard", "Blvd.", "Lane", "Ln",
             "Drive", "Dr.", "Court", "Ct.", "Way", "Place", "Terrace", "Parkway", "Pkwy", "Highway", "Circle",
             "Square"]
US_CITIES = [("Springfield", "IL", "627"), ("Austin", "TX", "787"), ("Portland", "OR", "972"),
             ("San Francisco", "CA", "941"), ("New York", "NY", "100"), ("Denver", "CO", "802"),
             ("Columbus", "OH", "432"), ("Seattle", "WA", "981"), ("Boston", "MA", "021"), ("Atlanta", "GA", "303"),
             ("Madison", "WI", "537"), ("Salt Lake City", "UT", "841"), ("Washington", "DC", "205")]
UK_ADDR = [("Downing Street", "London", "SW1A 2AA"), ("Baker Street", "London", "NW1 6XE"),
           ("Station Road", "Manchester", "M1 1AE"), ("Church Lane", "Bristol", "BS1 4DJ"),
           ("High Street", "Oxford", "OX1 4AP"), ("Victoria Road", "Leeds", "LS6 1AN"),
           ("Old Gloucester Street", "London", "WC1N 3AX"), ("Queen Street", "Edinburgh", "EH2 1JE"),
           ("Mill Lane", "Cambridge", "CB2 1RX"), ("Park Road", "Birmingham", "B13 8AB")]
FR_STREETS = ["rue de Rivoli", "avenue des Champs-Élysées", "boulevard Saint-Michel", "rue du Faubourg Saint-Honoré",
              "place Bellecour", "rue de la Paix", "rue Oberkampf", "avenue Jean Jaurès", "quai de la Tournelle",
              "rue d'Alésia"]
FR_CITIES = [("75001", "Paris"), ("75005", "Paris"), ("69002", "Lyon"), ("13001", "Marseille"),
             ("31000", "Toulouse"), ("33000", "Bordeaux")]
DE_STREETS = ["Hauptstraße", "Goethestraße", "Friedrichstraße", "Lindenallee", "Schillerstraße", "Bahnhofstraße",
              "Berliner Straße", "Am Markt", "Kastanienweg", "Marktplatz", "Rosengasse", "Kurfürstendamm"]
DE_CITIES = [("10115", "Berlin"), ("80336", "München"), ("20095", "Hamburg"), ("50667", "Köln"),
             ("60311", "Frankfurt"), ("70173", "Stuttgart")]
ES_STREETS = ["Calle Mayor", "Avenida de la Constitución", "Paseo de Gracia", "Calle de Alcalá", "Carrer de Mallorca",
              "Plaza Mayor", "Calle del Prado"]
ES_CITIES = [("28013", "Madrid"), ("08008", "Barcelona"), ("41001", "Sevilla"), ("46002", "Valencia")]
IT_STREETS = ["Via Roma", "Via Giuseppe Garibaldi", "Piazza San Marco", "Corso Buenos Aires", "Via Dante",
              "Viale Monza", "Corso Vittorio Emanuele"]
IT_CITIES = [("00184", "Roma"), ("20124", "Milano"), ("30124", "Venezia"), ("10121", "Torino")]
NL_STREETS = ["Keizersgracht", "Prinsengracht", "Herengracht", "Damrak", "Laan van Meerdervoort", "Stationsplein",
              "Oudegracht", "Korte Voorhout"]
NL_CITIES = [("1015 CJ", "Amsterdam"), ("2517 AA", "Den Haag"), ("3511 AB", "Utrecht"), ("3011 AD", "Rotterdam")]


def house():
    r = rng.random()
    if r < 0.5:
        return str(rng.randint(1, 999))
    if r < 0.85:
        return str(rng.randint(1000, 9999))
    return str(rng.randint(10000, 24999))


def us_address():
    parts = [house(), " "]
    if rng.random() < 0.15:
        parts += [pick(["N.", "S.", "E.", "W.", "North", "West"]), " "]
    parts += [pick(US_STREETS), " ", pick(US_SUFFIX)]
    if rng.random() < 0.12:
        parts += [" ", pick(["NW", "NE", "SE", "SW"])]
    if rng.random() < 0.3:
        parts += [pick([", Apt ", " Apt ", ", Suite ", " Suite ", ", Unit ", " #"]),
                  pick([str(rng.randint(1, 40)) + pick(["", "B", "C"]), str(rng.randint(100, 999))])]
    if rng.random() < 0.55:
        city, state, zip3 = pick(US_CITIES)
        parts += [", ", city, ", ", state]
        if rng.random() < 0.85:
            parts += [" ", zip3 + d(2)]
    return "".join(parts)


def uk_address():
    street, city, pc = pick(UK_ADDR)
    num = pick([str(rng.randint(1, 180)), str(rng.randint(1, 300)) + pick(["A", "B"])])
    s = f"{num} {street}"
    if rng.random() < 0.7:
        s += f", {city} {pc}"
    return s


def eu_address():
    country = pick(["FR", "DE", "DE", "ES", "IT", "NL"])
    n = str(rng.randint(1, 250))
    if country == "FR":
        s = f"{n} {pick(FR_STREETS)}"
        if rng.random() < 0.6:
            pc, city = pick(FR_CITIES)
            s += f", {pc} {city}"
        return s
    if country == "DE":
        s = f"{pick(DE_STREETS)} {n}{pick(['', '', '', 'a', 'b'])}"
        if rng.random() < 0.6:
            pc, city = pick(DE_CITIES)
            s += f", {pc} {city}"
        return s
    if country == "ES":
        s = f"{pick(ES_STREETS)} {n}"
        if rng.random() < 0.5:
            pc, city = pick(ES_CITIES)
            s += f", {pc} {city}"
        return s
    if country == "IT":
        s = f"{pick(IT_STREETS)} {n}"
        if rng.random() < 0.5:
            pc, city = pick(IT_CITIES)
            s += f", {pc} {city}"
        return s
    s = f"{pick(NL_STREETS)} {n}"
    if rng.random() < 0.5:
        pc, city = pick(NL_CITIES)
        s += f", {pc} {city}"
    return s


def seg_address():
    r = rng.random()
    if r < 0.5:
        return [(us_address(), "STREET_ADDRESS")]
    if r < 0.65:
        return [(uk_address(), "STREET_ADDRESS")]
    return [(eu_address(), "STREET_ADDRESS")]


def seg_us_address():
    return [(us_address(), "STREET_ADDRESS")]


def seg_eu_address():
    return [(eu_address(), "STREET_ADDRESS")]


# --------------------------------------------------------------------------------------------
# Fillers: values that are NOT personal data (hard negatives inside sentences).
# --------------------------------------------------------------------------------------------

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PRODUCTS = ["Apple Watch", "Google Pixel", "Microsoft Teams", "Slack", "Jira", "Notion", "Kubernetes", "Postgres",
            "Salesforce", "Zoom", "Outlook", "Dropbox", "Figma", "Confluence", "GitHub Actions"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Stark Industries", "Wayne Enterprises",
             "Contoso", "Northwind Traders", "Fabrikam", "Tailspin Toys"]
CITIES = ["New York", "Paris", "Berlin", "Madrid", "Rome", "Tokyo", "Toronto", "Amsterdam", "Lisbon", "Chicago",
          "San Francisco", "Sydney", "Dublin", "Vienna", "Munich"]


def date_value():
    y, m, dd = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    return pick([f"{y}-{m:02d}-{dd:02d}", f"{dd:02d}.{m:02d}.{y}", f"{m:02d}/{dd:02d}/{y}",
                 f"{MONTHS[m - 1][:3]} {dd}, {y}", f"{dd} {MONTHS[m - 1]} {y}", f"{y}/{m:02d}/{dd:02d}"])


def time_value():
    h, mi = rng.randint(0, 23), rng.randint(0, 59)
    return pick([f"{h:02d}:{mi:02d}", f"{h:02d}:{mi:02d}:{rng.randint(0, 59):02d}", f"{(h % 12) + 1}:{mi:02d} "
                 + pick(["AM", "PM"]), f"{h:02d}:{mi:02d} UTC"])


def version_value():
    return pick([f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
                 f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
                 f"{rng.randint(1, 20)}.{rng.randint(0, 9)}"])


def version4_value():
    return f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}"


def price_value():
    return pick([f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
                 f"${rng.randint(5, 999)}.{rng.randint(0, 99):02d}", f"€{rng.randint(5, 999)},{rng.randint(0, 99):02d}",
                 f"£{rng.randint(5, 999)}.{rng.randint(0, 99):02d}", f"USD {rng.randint(10, 5000)}",
                 f"{rng.randint(5, 999)} EUR"])


def order_value():
    return pick([f"#{rng.randint(100000, 999999)}", f"ORD-{rng.randint(2019, 2026)}-{d(5)}",
                 f"A-{rng.randint(10000, 99999)}", f"#{d1(9)}"])


def hash_value():
    return rand(HEX, 40) if rng.random() < 0.6 else rand(HEX, 7)


def uuid_value():
    h = rand(HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def sku_value():
    return pick([f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{rng.randint(1000, 9999)}-"
                 f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}",
                 f"SKU{d(6)}", f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"])


FILLERS = {
    "DATE": date_value,
    "TIME": time_value,
    "VERSION": version_value,
    "VERSION4": version4_value,
    "PRICE": price_value,
    "ORDER": order_value,
    "HASH": hash_value,
    "UUID": uuid_value,
    "SKU": sku_value,
    "NUM": lambda: str(rng.randint(2, 500)),
    "SMALL": lambda: str(rng.randint(2, 12)),
    "PCT": lambda: f"{rng.randint(1, 99)}.{rng.randint(0, 9)}%",
    "ZIP": lambda: pick(["94103", "10001", "60614", "30301", "73301"]),
    "YEAR": lambda: str(rng.randint(1950, 2005)),
    "MONTH": lambda: pick(MONTHS),
    "WEEKDAY": lambda: pick(WEEKDAYS),
    "PRODUCT": lambda: pick(PRODUCTS),
    "COMPANY": lambda: pick(COMPANIES),
    "CITY": lambda: pick(CITIES),
    "LAST4": lambda: d(4),
    "EXP": lambda: f"{rng.randint(1, 12):02d}/{rng.randint(25, 31)}",
    "PORT": lambda: pick(["8080", "443", "5432", "6379", "3000", "9090"]),
    "TEN": lambda: d1(3) + d(7),
    "ISBN": lambda: f"978-{rng.randint(0, 9)}-{rng.randint(10, 99)}-{d(6)}-{rng.randint(0, 9)}",
    "BIG": lambda: f"{rng.randint(1, 99)},{d(3)},{d(3)}",
    "SIZE": lambda: f"{rng.randint(1, 99)}.{rng.randint(0, 9)} {pick(['GB', 'MB', 'KB'])}",
    "MAC": lambda: ":".join("%02X" % rng.randint(0, 255) for _ in range(6)),
    "LAT": lambda: f"{rng.randint(-80, 80)}.{d(4)}",
    "LON": lambda: f"{rng.randint(-179, 179)}.{d(4)}",
    "ROOM": lambda: str(rng.randint(100, 999)),
    "EXT": lambda: d1(4),
    "SHA": lambda: rand(HEX, 64),
    "SCORE": lambda: f"{rng.randint(0, 5)}-{rng.randint(0, 5)}",
    "CVV": lambda: d(3),
    "BIC": lambda: pick(["DEUTDEFF", "COBADEFFXXX", "BNPAFRPP", "INGBNL2A", "BARCGB22", "CAIXESBBXXX"]),
    "FLIGHT": lambda: pick(["LH", "BA", "AF", "UA", "KL"]) + str(rng.randint(100, 9999)),
}

SLOTS = {
    "PERSON": seg_person,
    "FULLNAME": seg_fullname,
    "FIRST": seg_first,
    "EMAIL": seg_email,
    "PHONE": seg_phone,
    "USPHONE": seg_us_phone,
    "BAREPHONE": seg_bare_phone,
    "CARD": seg_card,
    "IBAN": seg_iban,
    "SSN": seg_ssn,
    "SSNBARE": seg_ssn_bare,
    "IP": seg_ip,
    "IPV4": seg_ipv4,
    "IPV6": seg_ipv6,
    "KEY": seg_key,
    "SECRET": seg_secret_assign,
    "BEARER": seg_bearer,
    "PHONEEXT": seg_phone_ext,
    "TELURI": seg_tel_uri,
    "LOCALPHONE": seg_local_phone,
    "IPPORT": seg_ip_port,
    "LOWERFIRST": seg_lower_first,
    "UPPERNAME": seg_upper_name,
    "ADDRESS": seg_address,
    "USADDRESS": seg_us_address,
    "EUADDRESS": seg_eu_address,
}

# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------

POSITIVE = [
    # support tickets / CRM notes
    "Customer {PERSON} reports that the invoice sent to {EMAIL} shows the wrong amount.",
    "Ticket {ORDER}: {PERSON} cannot log in since {DATE}; last seen from {IP}.",
    "Please call {PERSON} back on {PHONE} before {TIME} today.",
    "Refund requested by {FULLNAME} for the card ending in {LAST4}.",
    "The customer pasted their card number {CARD} into the chat, please purge the transcript.",
    "Update the shipping address to {ADDRESS} for order {ORDER}.",
    "New billing contact: {FULLNAME}, {EMAIL}, {PHONE}.",
    "Wire transfer details: IBAN {IBAN}, account holder {FULLNAME}.",
    "Applicant SSN: {SSN}, date of birth {DATE}.",
    "The employee's social security number is {SSN}.",
    "SSN {SSNBARE} was entered twice in the onboarding form.",
    "Blocked {IP} after {NUM} failed login attempts.",
    "Rotate the leaked key {KEY} immediately; it was committed in {HASH}.",
    "Payment failed for card {CARD} (exp {EXP}); {PERSON} was notified at {EMAIL}.",
    "Please pay invoice {ORDER} to {IBAN} by {DATE}.",
    "Spoke with {PERSON} from {COMPANY}; they will send the signed NDA to {EMAIL}.",
    "Assigned to {FULLNAME} (ext. {EXT}).",
    "Escalated by {FULLNAME} at {TIME}: customer {FULLNAME} is still waiting for a callback on {PHONE}.",
    "Fraud alert: card {CARD} was used from {IP} on {DATE}.",
    "SSN on file: {SSN}; phone on file: {PHONE}.",
    "Contractor {FULLNAME}, IBAN {IBAN}, invoice {ORDER} for {PRICE}.",
    "{PERSON} will review the pull request tomorrow.",
    "Meeting notes: {FULLNAME}, {FULLNAME} and {FULLNAME} attended; action items go to {EMAIL}.",
    "{FULLNAME} ({EMAIL}) requested access to the {PRODUCT} workspace.",
    "Caller {FULLNAME} asked us to update her number to {PHONE}.",
    "Account holder: {FULLNAME}. Card: {CARD}. Billing address: {ADDRESS}.",
    "The tenant {FULLNAME} moved out of {USADDRESS} on {DATE}.",
    "Delivery failed at {ADDRESS}; the courier left a note for {PERSON}.",
    "Patient: {FULLNAME}, DOB {DATE}, SSN {SSN}.",
    "Verified identity of {FULLNAME} using the last four digits {LAST4} and the email {EMAIL}.",
    # chat
    "hey it's {FIRST}, my number is {PHONE}",
    "Hi {FIRST}, your appointment on {DATE} at {TIME} is confirmed.",
    "Hello {FIRST}! Your parcel to {ADDRESS} ships on {WEEKDAY}.",
    "can you ping {FIRST} about the outage on {IPV4}?",
    "text me at {USPHONE} when you land",
    "my cell is {BAREPHONE}, call anytime after {TIME}",
    "Reach me on WhatsApp at {PHONE}.",
    "lol {FIRST} just sent the wifi password to the whole channel",
    "I'm {FULLNAME}, and I live at {ADDRESS}.",
    "My name is {FULLNAME} and my email is {EMAIL}.",
    "Thanks, {FIRST}! I'll forward it to {EMAIL}.",
    "ok so {FULLNAME} said the server is {IP} now",
    # email-like
    "Dear {PERSON},\nyour card {CARD} was charged {PRICE} on {DATE}.",
    "Dear {FULLNAME}, please find attached the lease for {ADDRESS}.",
    "Best regards,\n{FULLNAME}\n{PHONE}",
    "Kind regards,\n{FULLNAME}\n{COMPANY} | {EMAIL}",
    "From: {FULLNAME} <{EMAIL}>\nSubject: Invoice {ORDER}",
    "Sincerely, {FULLNAME}",
    "Please send the contract to {FULLNAME} at {ADDRESS}.",
    "Tel.: {PHONE} · Fax: {PHONE}",
    "Mobile: {PHONE}",
    "Emergency contact: {FULLNAME}, {PHONE}.",
    "Our office is located at {ADDRESS}.",
    "Visit us at {USADDRESS} or call {USPHONE}.",
    "Sent from my phone. {FULLNAME} | {PHONE}",
    # logs / config / dev
    "Log: user={EMAIL} ip={IP} action=login status=ok",
    "{DATE} {TIME} WARN auth: invalid password for {EMAIL} from {IP}",
    "curl -H 'Authorization: {BEARER}' https://api.example.com/v1/items",
    "export STRIPE_KEY={KEY}",
    "Found a token {KEY} in commit {HASH}; revoked by {FULLNAME}.",
    "Config dump: {SECRET}, region=eu-west-1, timeout={NUM}",
    "The settings page leaked {SECRET} in the HTML source.",
    "The VPN gateway {IPV4} forwards traffic to {IPV6}.",
    "The DNS server {IPV4} did not respond, fallback {IPV4} worked.",
    "nginx: connect() failed while connecting to upstream, client: {IP}, server: api.example.com",
    "Our staging box moved from {IPV6} to {IPV4} after the migration.",
    "Do not commit secrets like {KEY} to the repository (see {VERSION} release notes).",
    "Request from {IP} with header X-Token {KEY} was rejected at {TIME}.",
    "Set {SECRET} in your .env file before running the tests.",
    # wiki / narrative
    "{FULLNAME} (born {YEAR}) is a software engineer who maintains the {PRODUCT} integration.",
    "In {YEAR}, {FULLNAME} founded a bakery at {ADDRESS}.",
    "The letters were addressed to {PERSON} at {EUADDRESS}.",
    "{FULLNAME} and {FULLNAME} co-authored the report.",
    "According to {FULLNAME}, the deadline is {DATE}.",
    "The house at {USADDRESS} was sold in {YEAR}.",
    # multilingual
    "Ich wohne in der {EUADDRESS}, meine Nummer ist {PHONE}.",
    "Grüße an {FULLNAME}, ihre Adresse ist {EMAIL}.",
    "Mon adresse est {EUADDRESS}, appelez-moi au {PHONE}.",
    "Nuestra oficina está en {EUADDRESS}; escríbanos a {EMAIL}.",
    "Bonjour {FIRST}, votre IBAN {IBAN} a bien été enregistré.",
    "Überweisung bitte an {IBAN} (Kontoinhaber: {FULLNAME}).",
    # more structured identifiers
    "Charge the remaining {PRICE} to {CARD}, please.",
    "card: {CARD} cvv: {CVV}",
    "Can you confirm the Visa {CARD} is still active?",
    "Stored payment method {CARD} expired on {EXP}.",
    "Kreditkarte {CARD}, gültig bis {EXP}.",
    "Send the deposit to {IBAN}.",
    "Beneficiary: {FULLNAME}\nIBAN: {IBAN}\nBIC: {BIC}",
    "Our new bank account is {IBAN}; please update your records.",
    "Le virement doit être fait sur le compte {IBAN}.",
    "Her SSN is {SSN} and her employee ID is E-{NUM}.",
    "W-2 form: employee SSN {SSN}, wages {PRICE}.",
    "social security no. {SSNBARE}",
    "Please redact the SSN ({SSN}) before sharing the PDF.",
    "Allow-list {IPV4} and {IPV4} in the firewall.",
    "ssh deploy@{IPV4} -p {PORT}",
    "ping6 {IPV6} returned 100% packet loss",
    "Here is my key {KEY}, can you check why it fails?",
    "GITHUB_TOKEN={KEY}",
    "Authorization: {BEARER}",
    # harder formats
    "Reach our sales desk at {PHONEEXT} between {TIME} and {TIME}.",
    "<a href=\"{TELURI}\">Call us</a>",
    "from the lobby, call {LOCALPHONE} and ask for security",
    "upstream {IPPORT} timed out after {NUM} ms",
    "Reply to <{EMAIL}> or use mailto:{EMAIL} in the footer.",
    "ok talked to {LOWERFIRST}, they'll call back tomorrow",
    "CARDHOLDER: {UPPERNAME}\nCARD: {CARD}",
    "Prof. Dr. {FULLNAME} chairs the committee.",
    "{FULLNAME}'s flight lands at {TIME}.",
]

NEGATIVE = [
    "The deployment on {DATE} at {TIME} rolled out version {VERSION} to {NUM} pods.",
    "Order {ORDER} totals {PRICE} including VAT.",
    "Meet me in {CITY} on {WEEKDAY}, and bring the Apple Watch charger.",
    "Commit {HASH} fixed the memory leak reported in issue #{NUM}.",
    "Request id {UUID} took {NUM} ms.",
    "The ZIP code {ZIP} is outside our delivery area.",
    "SKU {SKU} is back in stock at {PRICE}.",
    "Release {VERSION} ships on {MONTH} {SMALL}.",
    "ticket {TEN} was closed as a duplicate.",
    "Our revenue grew {PCT} to {PRICE} million this quarter.",
    "Screen resolution 1920x1080 at 60 Hz, build {NUM}.",
    "Room {ROOM} on floor {SMALL} is booked from {TIME} to {TIME}.",
    "Invoice {ORDER} was paid on {DATE}.",
    "The {WEEKDAY} stand-up moved to {WEEKDAY} at {TIME}.",
    "Use port {PORT} for the admin console; version {VERSION} is required.",
    "Downloaded {SIZE} in {NUM} seconds from the mirror in {CITY}.",
    "Coordinates {LAT}, {LON} mark the trailhead.",
    "ISBN {ISBN} is the second edition.",
    "Set the timeout to {NUM} seconds and retries to {SMALL}.",
    "The firmware {VERSION4} fixes the Bluetooth pairing bug.",
    "Upgrade to version {VERSION4} before {DATE}.",
    "Sprint {NUM} planning: migrate the Billing Service to {PRODUCT}.",
    "{PRODUCT} and {PRODUCT} were compared in the review.",
    "The match ended {SCORE} after extra time on {DATE}.",
    "Temperatures reached {SMALL}.5 degrees in {CITY} on {DATE}.",
    "Population: {BIG} (census {YEAR}).",
    "Flight {FLIGHT} departs Terminal {SMALL} at {TIME}.",
    "The MAC filter blocks {MAC} on the guest network.",
    "Error 0x80070005 occurred while installing update KB{NUM}.",
    "Pay {PRICE} by {DATE} to avoid the late fee.",
    "Support hours are {TIME} to {TIME}, Monday through Friday.",
    "Version {VERSION} of the SDK adds support for IPv6.",
    "The {CITY} office closes at {TIME} on Fridays.",
    "Product code {SKU} and batch {NUM} passed QA on {DATE}.",
    "UUID {UUID} was assigned to the new tenant.",
    "Image digest sha256:{SHA} was pushed to the registry.",
    "Customer satisfaction rose to {PCT} in {MONTH}.",
    "Order number {ORDER} shipped on {DATE} via {COMPANY}.",
    "The password policy requires {SMALL} characters and one digit.",
    "Token lifetime is {NUM} seconds; refresh tokens last {SMALL} days.",
    "Kubernetes {VERSION} and Go {VERSION} are required.",
    "Quarterly Revenue Report for {COMPANY}, {MONTH} {YEAR}.",
    "New York and San Francisco teams meet every {WEEKDAY}.",
    "The {COMPANY} Support Team will reply within {SMALL} business days.",
    "Mark the invoice as paid once the {PRICE} transfer clears.",
    "The API returned HTTP {PORT} after {NUM} retries at {TIME}.",
    "Build {NUM} passed {NUM} of {NUM} tests in {SMALL} minutes.",
    "Tracking number {TEN} is still in transit.",
    "Route 66 and Highway 101 are both closed after the storm.",
    "Apollo 11 landed in 1969; Studio 54 opened in 1977.",
    "The Boeing 737-800 seats {NUM} passengers.",
    "Windows 10 support ends on {DATE}.",
    "Print it on A4 paper at 300 dpi.",
    "Area 51 and Section 230 trended on {WEEKDAY}.",
    "Maroon 5 played for 90 minutes.",
    "We ordered 12 Angry Men on Blu-ray for {PRICE}.",
]


def fill(template):
    text = ""
    ents = []
    for part in re.split(r"(\{[A-Z0-9]+\})", template):
        if not (part.startswith("{") and part.endswith("}")):
            text += part
            continue
        name = part[1:-1]
        if name in FILLERS:
            text += FILLERS[name]()
            continue
        for seg, label in SLOTS[name]():
            if label is not None:
                end = len(text) + len(seg)
                # Convention: a span never ends with a period ("12 Oak Ave." -> "12 Oak Ave").
                if seg.endswith("."):
                    end -= 1
                ents.append({"type": label, "start": len(text), "end": end})
            text += seg
    # An abbreviation's period doubles as the full stop: "12 Oak Ave." + "." -> "12 Oak Ave."
    while ".." in text:
        i = text.index("..")
        text = text[:i] + text[i + 1:]
        for e in ents:
            if e["start"] > i:
                e["start"] -= 1
            if e["end"] > i:
                e["end"] -= 1
    return {"text": text, "entities": ents}


def main():
    n_neg = int(LINES * NEGATIVE_SHARE)
    n_pos = LINES - n_neg
    lines = []
    # Every template is used; the rest are drawn at random.
    rare = re.compile(r"\{(?:CARD|IBAN|SSN|SSNBARE|KEY|SECRET|BEARER|IPV4|IPV6|IP)\}")
    weights = [2.5 if rare.search(t) else 1.0 for t in POSITIVE]
    pos = POSITIVE[:] + rng.choices(POSITIVE, weights=weights, k=n_pos - len(POSITIVE))
    neg = NEGATIVE[:] + [pick(NEGATIVE) for _ in range(n_neg - len(NEGATIVE))]
    for t in pos:
        lines.append(fill(t))
    for t in neg:
        lines.append(fill(t))
    rng.shuffle(lines)
    out = os.path.join(HERE, "eval.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for obj in lines:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    counts = {}
    for obj in lines:
        for e in obj["entities"]:
            counts[e["type"]] = counts.get(e["type"], 0) + 1
    print(f"wrote {len(lines)} lines to {out}")
    for k in sorted(counts):
        print(f"  {k:15} {counts[k]}")


if __name__ == "__main__":
    main()
