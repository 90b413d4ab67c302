"""Personal names for comparison: nicknames, surname particles and parts, a phonetic key.

Everything here works on *folded* text (see `normalize.fold`) and is for comparison only: what gets
written to PowerSchool is always the name the family typed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# formal first name -> the nicknames and short forms families write for it (English and Spanish).
# A nickname may belong to several formal names (Alex, Chris, Pat, Sam, Frank...): two first names are
# nickname-equivalent when their sets of formal names intersect.
NICKNAMES: dict[str, tuple[str, ...]] = {
    # English, men
    "William": ("Bill", "Billy", "Will", "Willie", "Willy", "Liam"),
    "Robert": ("Bob", "Bobby", "Rob", "Robbie", "Bert"),
    "Richard": ("Rick", "Ricky", "Rich", "Richie", "Dick"),
    "James": ("Jim", "Jimmy", "Jamie", "Jimbo"),
    "John": ("Jack", "Johnny", "Jon"),
    "Jonathan": ("Jon", "Jonny", "Johnny"),
    "Joseph": ("Joe", "Joey", "Jo"),
    "Thomas": ("Tom", "Tommy"),
    "Michael": ("Mike", "Mikey", "Mick", "Mickey"),
    "Christopher": ("Chris", "Kit", "Topher"),
    "Christian": ("Chris",),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt", "Matty"),
    "Nicholas": ("Nick", "Nicky", "Nico"),
    "Anthony": ("Tony", "Ant"),
    "Andrew": ("Andy", "Drew"),
    "Steven": ("Steve", "Stevie"),
    "Stephen": ("Steve", "Stevie"),
    "Edward": ("Ed", "Eddie", "Ted", "Ned"),
    "Theodore": ("Ted", "Teddy", "Theo"),
    "Charles": ("Charlie", "Chuck", "Chas"),
    "David": ("Dave", "Davey"),
    "Benjamin": ("Ben", "Benny", "Benji"),
    "Samuel": ("Sam", "Sammy"),
    "Alexander": ("Alex", "Al", "Xander", "Sasha"),
    "Albert": ("Al", "Bert"),
    "Alan": ("Al",),
    "Gregory": ("Greg",),
    "Jeffrey": ("Jeff",),
    "Geoffrey": ("Jeff", "Geoff"),
    "Kenneth": ("Ken", "Kenny"),
    "Ronald": ("Ron", "Ronnie"),
    "Donald": ("Don", "Donnie"),
    "Timothy": ("Tim", "Timmy"),
    "Patrick": ("Pat", "Paddy"),
    "Peter": ("Pete",),
    "Raymond": ("Ray",),
    "Lawrence": ("Larry",),
    "Leonard": ("Len", "Lenny", "Leo"),
    "Gerald": ("Gerry", "Jerry"),
    "Jerome": ("Jerry",),
    "Harold": ("Harry", "Hal"),
    "Henry": ("Hank", "Harry"),
    "Frederick": ("Fred", "Freddie", "Freddy"),
    "Eugene": ("Gene",),
    "Francis": ("Frank", "Frankie"),
    "Franklin": ("Frank", "Frankie"),
    "Phillip": ("Phil",),
    "Philip": ("Phil",),
    "Douglas": ("Doug",),
    "Zachary": ("Zach", "Zack"),
    "Joshua": ("Josh",),
    "Jacob": ("Jake",),
    "Nathaniel": ("Nate", "Nat", "Nathan"),
    "Nathan": ("Nate",),
    "Benedict": ("Ben",),
    "Vincent": ("Vince", "Vinny"),
    "Walter": ("Walt", "Wally"),
    "Ernest": ("Ernie",),
    "Samson": ("Sam",),
    "Cameron": ("Cam",),
    "Dominic": ("Dom",),
    "Maximilian": ("Max",),
    "Maxwell": ("Max",),
    "Mitchell": ("Mitch",),
    "Randall": ("Randy",),
    "Russell": ("Russ",),
    "Terrence": ("Terry",),
    "Terence": ("Terry",),
    "Bradley": ("Brad",),
    "Jeremiah": ("Jerry",),
    "Isaac": ("Ike",),
    "Augustus": ("Gus",),
    "Solomon": ("Sol",),
    # English, women
    "Elizabeth": ("Liz", "Lizzie", "Lizzy", "Beth", "Betsy", "Betty", "Eliza", "Libby", "Elise"),
    "Katherine": ("Kate", "Katie", "Kathy", "Kat", "Kay", "Kitty"),
    "Catherine": ("Cathy", "Cat", "Kate", "Katie", "Cate"),
    "Kathleen": ("Kathy", "Kate", "Katie"),
    "Jennifer": ("Jen", "Jenny", "Jenn"),
    "Margaret": ("Maggie", "Peggy", "Meg", "Marge", "Madge", "Greta"),
    "Patricia": ("Pat", "Patty", "Patti", "Paty", "Trish", "Tricia"),
    "Susan": ("Sue", "Susie", "Suzy"),
    "Suzanne": ("Sue", "Susie", "Suzy"),
    "Rebecca": ("Becky", "Becca"),
    "Deborah": ("Debbie", "Deb", "Debra"),
    "Samantha": ("Sam", "Sammy"),
    "Victoria": ("Vicky", "Vickie", "Tori"),
    "Christine": ("Chris", "Chrissy", "Tina"),
    "Christina": ("Chris", "Chrissy", "Tina"),
    "Kimberly": ("Kim", "Kimmy"),
    "Jessica": ("Jess", "Jessie"),
    "Alexandra": ("Alex", "Sasha", "Lexi", "Sandra"),
    "Alexis": ("Alex", "Lexi"),
    "Abigail": ("Abby", "Gail"),
    "Barbara": ("Barb", "Barbie"),
    "Cynthia": ("Cindy",),
    "Dorothy": ("Dot", "Dottie", "Dolly"),
    "Eleanor": ("Ellie", "Nora", "Nell"),
    "Helen": ("Nell", "Nellie"),
    "Judith": ("Judy",),
    "Jacqueline": ("Jackie",),
    "Josephine": ("Jo", "Josie"),
    "Kristen": ("Kristy", "Kris"),
    "Madeline": ("Maddie", "Maddy"),
    "Melissa": ("Mel", "Missy"),
    "Melanie": ("Mel",),
    "Nancy": ("Nan",),
    "Pamela": ("Pam",),
    "Sandra": ("Sandy",),
    "Stephanie": ("Steph", "Stephie"),
    "Teresa": ("Terry", "Tess", "Tessa", "Tere"),
    "Theresa": ("Terry", "Tess", "Tessa"),
    "Valerie": ("Val",),
    "Veronica": ("Ronnie", "Vero"),
    "Virginia": ("Ginny", "Ginger"),
    "Frances": ("Fran", "Frannie"),
    "Gabrielle": ("Gabby", "Gabi"),
    "Amanda": ("Mandy",),
    "Angela": ("Angie",),
    "Cassandra": ("Cassie",),
    "Danielle": ("Dani",),
    "Dolores": ("Lola", "Loli", "Lolita", "Dolly"),
    "Caroline": ("Carrie",),
    "Carolyn": ("Carrie",),
    "Lillian": ("Lily", "Lil"),
    "Mary": ("Molly", "Polly", "Mae"),
    "Ann": ("Annie", "Nan"),
    "Anne": ("Annie", "Nan"),
    # Spanish
    "José": ("Pepe", "Chepe", "Pepito", "Joselito"),
    "Francisco": ("Paco", "Pancho", "Frank", "Cisco", "Curro", "Kiko", "Quico"),
    "Jesús": ("Chuy", "Chucho", "Jesse"),
    "Guadalupe": ("Lupe", "Lupita", "Pita"),
    "Alejandro": ("Alex", "Alejo", "Jando"),
    "Alejandra": ("Alex", "Ale", "Sandra"),
    "Eduardo": ("Lalo", "Eddie", "Edu"),
    "Enrique": ("Quique", "Kike"),
    "Ignacio": ("Nacho",),
    "Manuel": ("Manolo", "Manny", "Memo"),
    "Guillermo": ("Memo", "Guille", "Willy"),
    "Roberto": ("Beto", "Tito", "Rober"),
    "Alberto": ("Beto", "Tito"),
    "Humberto": ("Beto",),
    "Gilberto": ("Beto",),
    "Rodolfo": ("Rudy", "Fito"),
    "Adolfo": ("Fito",),
    "Ricardo": ("Richi", "Ricky"),
    "Antonio": ("Toño", "Tony", "Toni"),
    "Luis": ("Lucho", "Güicho", "Wicho"),
    "Salvador": ("Chava", "Salva"),
    "Santiago": ("Santi", "Chago"),
    "Rafael": ("Rafa", "Falo"),
    "Fernando": ("Nando", "Fer"),
    "Gerardo": ("Jerry", "Gera"),
    "Jorge": ("Coque",),
    "Joaquín": ("Quino", "Chimo"),
    "Javier": ("Javi",),
    "Concepción": ("Concha", "Conchita", "Chona"),
    "Mercedes": ("Meche", "Merche"),
    "Rosario": ("Charo", "Chayo"),
    "Soledad": ("Chole", "Sole"),
    "Graciela": ("Chela",),
    "Consuelo": ("Chelo",),
    "Socorro": ("Coco",),
    "Refugio": ("Cuca", "Cuco"),
    "Leticia": ("Lety", "Leti"),
    "Margarita": ("Maggie", "Rita", "Magui"),
    "Beatriz": ("Bea", "Betty"),
    "Isabel": ("Isa", "Chabela", "Bela", "Belle"),
    "Elena": ("Nena",),
    "Verónica": ("Vero",),
    "Cristina": ("Cris", "Tina"),
    "Gabriela": ("Gaby", "Gabi"),
    "Daniela": ("Dani",),
    "Natalia": ("Nati", "Naty"),
    "Carolina": ("Caro",),
    "Fernanda": ("Fer",),
    "Mariana": ("Mari",),
    "María": ("Mari", "Maru", "Mary"),
    "Josefina": ("Pepa", "Fina", "Chepina"),
    "Ana": ("Anita",),
    "Juan": ("Juanito", "Juancho"),
    "Pedro": ("Perico",),
    "Carlos": ("Charlie", "Carlitos"),
}

# surname particles dropped when surnames are compared part by part
PARTICLES = frozenset({"de", "del", "la", "las", "los", "le", "da", "das", "do", "dos", "di", "du",
                       "van", "von", "der", "den", "ter", "ten", "y", "e", "i"})
# particles that fuse with the next part: "O'Brien" ~ "OBrien" ~ "O Brien"
_FUSE = frozenset({"o", "d", "l", "mc", "mac"})


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    stripped = re.sub(r"[\u2019\u2018'`´]", "", stripped)  # O'Brien -> obrien: an apostrophe joins
    return " ".join(re.sub(r"[^\w]|_", " ", stripped).split())


def _build_groups() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for formal, nicks in NICKNAMES.items():
        f = _fold(formal)
        groups.setdefault(f, set()).add(f)
        for nick in nicks:
            groups.setdefault(_fold(nick), set()).add(f)
    return {name: frozenset(formals) for name, formals in groups.items()}


_GROUPS = _build_groups()
FORMAL_NAMES = frozenset(_fold(n) for n in NICKNAMES)


def formal_names(first_token: str) -> frozenset[str]:
    """The formal names a folded first-name token may stand for ({itself} when it is no known nickname)."""
    return _GROUPS.get(first_token, frozenset({first_token}))


def known_first_name(token: str) -> bool:
    """True when a folded first-name token is in the nickname table, as a formal name or a nickname: only
    two such tokens can be nickname-equivalent."""
    return token in _GROUPS


def nickname_equivalent(a: str, b: str) -> bool:
    """True when two folded first-name tokens are one name by the nickname table (Bill ~ William)."""
    return a != b and bool(formal_names(a) & formal_names(b))


def distinct_given_names(a: str, b: str) -> bool:
    """True when two folded first-name tokens are two known different names, not a typo of one another:
    gender pairs (Mario/María, Daniel/Daniela, Juan/Juana) and different formal names of the table
    (Patrick/Patricia). Used to keep look-alike names from counting as a strong agreement."""
    if a == b or not a or not b or nickname_equivalent(a, b):
        return False
    short, long_ = sorted((a, b), key=len)
    if (long_ == short + "a" or long_ == short + "e") and short[-1:] not in {"a", "e"}:
        return True  # Daniel/Daniela, Juan/Juana, Louis/Louise (not Karina/Karinaa: a typo)
    if len(a) == len(b) and a[:-1] == b[:-1] and {a[-1], b[-1]} <= {"a", "o", "e"}:  # Mario/Maria
        return True
    known_a = a in FORMAL_NAMES or a in _GROUPS
    known_b = b in FORMAL_NAMES or b in _GROUPS
    return known_a and known_b


def surname_parts(folded_last: str) -> tuple[str, ...]:
    """Parts of a folded surname without particles: 'garcia lopez' -> ('garcia', 'lopez'),
    'de la cruz' -> ('cruz',), 'o brien' -> ('obrien',). Never empty for a non-empty name."""
    tokens = folded_last.split()
    fused: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _FUSE and i + 1 < len(tokens):
            fused.append(tok + tokens[i + 1])
            i += 2
            continue
        fused.append(tok)
        i += 1
    parts = tuple(t for t in fused if t not in PARTICLES)
    return parts or tuple(fused)


_SOUNDEX = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
            "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}


@lru_cache(maxsize=200_000)
def soundex(token: str) -> str:
    """American Soundex of a folded token ('' for an empty one); digits and other letters are skipped."""
    letters = [ch for ch in token if "a" <= ch <= "z"]
    if not letters:
        return token[:4]
    head = letters[0]
    out = []
    last = _SOUNDEX.get(head, "")
    for ch in letters[1:]:
        code = _SOUNDEX.get(ch, "")
        if code and code != last:
            out.append(code)
        if ch not in "hw":
            last = code
        if len(out) == 3:
            break
    return (head + "".join(out)).ljust(4, "0")
