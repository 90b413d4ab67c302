"""Static tables the generator draws from: nicknames, surnames, cities, relationship labels."""

from __future__ import annotations

REFERENCE_DATE = "2026-08-01"  # "today" for the synthetic district; no wall clock anywhere

# formal first name -> nicknames families write on forms (and sometimes registrars type into PowerSchool)
NICKNAMES: dict[str, list[str]] = {
    "William": ["Bill", "Will", "Billy"],
    "Robert": ["Bob", "Rob", "Bobby"],
    "Richard": ["Rick", "Dick", "Rich"],
    "James": ["Jim", "Jimmy", "Jamie"],
    "Joseph": ["Joe", "Joey"],
    "Thomas": ["Tom", "Tommy"],
    "Michael": ["Mike", "Mikey"],
    "Christopher": ["Chris"],
    "Daniel": ["Dan", "Danny"],
    "Matthew": ["Matt"],
    "Nicholas": ["Nick"],
    "Anthony": ["Tony"],
    "Andrew": ["Andy", "Drew"],
    "Steven": ["Steve"],
    "Jonathan": ["Jon"],
    "Alejandro": ["Alex"],
    "Francisco": ["Paco", "Frank"],
    "José": ["Pepe"],
    "Guadalupe": ["Lupe"],
    "Elizabeth": ["Liz", "Beth", "Betsy"],
    "Katherine": ["Kate", "Katie", "Kathy"],
    "Catherine": ["Cathy", "Cat"],
    "Jennifer": ["Jen", "Jenny"],
    "Margaret": ["Maggie", "Peggy"],
    "Patricia": ["Pat", "Patty", "Trish"],
    "Susan": ["Sue", "Susie"],
    "Rebecca": ["Becky", "Becca"],
    "Deborah": ["Debbie", "Deb"],
    "Samantha": ["Sam"],
    "Victoria": ["Vicky", "Tori"],
    "Christine": ["Chris", "Chrissy"],
    "Kimberly": ["Kim"],
    "Jessica": ["Jess"],
    "Alexandra": ["Alex", "Sasha"],
    "María": ["Mari"],
}

MALE_FORMAL = [n for n in NICKNAMES if n in {
    "William", "Robert", "Richard", "James", "Joseph", "Thomas", "Michael", "Christopher", "Daniel",
    "Matthew", "Nicholas", "Anthony", "Andrew", "Steven", "Jonathan", "Alejandro", "Francisco", "José"}]
FEMALE_FORMAL = [n for n in NICKNAMES if n not in MALE_FORMAL]

# surnames with the shapes that break naive matching
SPECIAL_SURNAMES = [
    "O'Brien", "O'Connor", "D'Angelo", "de la Cruz", "De La Rosa", "del Río", "Van der Berg", "van Dyke",
    "McDonald", "MacKenzie", "St. John", "Nguyễn", "Núñez", "Peña", "Ibáñez", "Muñoz", "Gómez", "Pérez",
    "Hernández", "Martínez", "Rodríguez", "Sánchez", "Jiménez", "Álvarez", "Castañeda", "Ortiz",
    "Müller", "Schäfer", "Björk", "Løvås", "Le", "Ng", "Wu", "Oyelaran-Smith", "Smith-Jones",
]
SPECIAL_FIRST_F = ["Zoë", "Chloé", "Renée", "Anaïs", "Inés", "Mónica", "Sofía", "Lucía", "Mai", "Siobhán",
                   "Mary Ann", "Ana María", "Jo"]
SPECIAL_FIRST_M = ["José Luis", "Jesús", "Andrés", "Ramón", "Joaquín", "Björn", "Seán", "Ngọc", "Jean-Luc",
                   "Al", "Juan Carlos", "Éric"]

# (city, area codes, zip prefix 3 digits)
CITIES = [
    ("Springfield", ["415", "628"], "941"),
    ("Oakdale", ["209"], "953"),
    ("Riverside", ["951"], "925"),
    ("Fresno", ["559"], "937"),
    ("San José", ["408", "669"], "951"),
    ("Salinas", ["831"], "939"),
    ("Modesto", ["209"], "953"),
    ("Santa Ana", ["714", "657"], "927"),
    ("Pasadena", ["626"], "911"),
    ("Berkeley", ["510", "341"], "947"),
    ("Chula Vista", ["619"], "919"),
    ("Escondido", ["760", "442"], "920"),
    ("La Cañada Flintridge", ["818"], "910"),
    ("Vallejo", ["707"], "945"),
]

STREET_SUFFIXES = ["St", "Ave", "Blvd", "Dr", "Ln", "Ct", "Way", "Rd", "Pl", "Street", "Avenue", "Drive"]
EMAIL_DOMAINS = ["example.org", "example.com", "example.net", "mail.example.com", "school.example.org"]

CODESETS = {
    "relationship": ["Mother", "Father", "Guardian", "Grandparent", "Aunt", "Uncle",
                     "Stepmother", "Stepfather", "Sibling", "Other"],
    "phone_type": ["Home", "Mobile", "Work"],
    "email_type": ["Personal", "Work"],
    "address_type": ["Home", "Mailing"],
    # PowerSchool's State code set: the US states, DC and the territories
    "state": ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
              "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC",
              "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
              "AS", "GU", "MP", "PR", "VI"],
}

# form labels per (PowerSchool relationship, person gender)
RELATIONSHIP_LABELS: dict[str, list[str]] = {
    "Mother": ["Mother", "Mom", "mother", "Mom", "MOTHER", "Mama", "Mum"],
    "Father": ["Father", "Dad", "father", "Dad", "FATHER", "Papa"],
    "Guardian": ["Guardian", "Legal Guardian", "guardian"],
    "Grandparent/F": ["Grandmother", "Grandma", "grandma", "Grandparent", "Abuela"],
    "Grandparent/M": ["Grandfather", "Grandpa", "grandpa", "Grandparent", "Abuelo"],
    "Aunt": ["Aunt", "Auntie", "aunt", "Tía"],
    "Uncle": ["Uncle", "uncle", "Tío"],
    "Stepmother": ["Stepmother", "Step-mother", "Stepmom", "step mother"],
    "Stepfather": ["Stepfather", "Step-father", "Stepdad", "step father"],
    "Sibling/F": ["Sister", "Sibling", "Older sister"],
    "Sibling/M": ["Brother", "Sibling", "Older brother"],
    "Other": ["Other", "Family Friend", "Friend", "Neighbor", "Babysitter"],
}

SCENARIO_WEIGHTS = {
    "unchanged": 30,
    "edited_name": 8,
    "edited_address": 15,
    "new_contact": 10,
    "contact_typo": 8,
    "phone_type_changed": 8,
    "removed_contact": 6,
    "sibling_new_parent": 7,
    "malformed": 3,
}
SCENARIOS = list(SCENARIO_WEIGHTS)
MALFORMED_KINDS = ["unknown_student_number", "bad_birthdate", "empty_student_number", "invalid_email",
                   "contact_missing_last_name"]
