"""The fixed vocabularies the grounding check recognises as claims: colours, materials and features, dates, units,
number words. A word here that the turn's facts do not use makes its sentence unbacked.

Words that are often something else in shop talk are left out on purpose ("rose", "mint", "wine", "down",
"light", "lightweight", "durable"): a claim the check cannot tell from an ordinary word is not checked, rather
than dropping good sentences.
"""

from __future__ import annotations

COLOURS = frozenset(
    """
    black white red blue green yellow orange purple pink brown grey gray beige navy teal turquoise maroon burgundy
    tan khaki olive charcoal ivory cream gold golden silver bronze copper coral lavender violet indigo magenta cyan
    aqua mauve taupe camel fuchsia crimson scarlet emerald multicolor multicolour multicoloured
    """.split()
)

MATERIALS = frozenset(
    """
    leather suede cotton wool merino cashmere silk linen polyester nylon denim canvas fleece velvet satin rayon
    spandex elastane lycra acrylic viscose bamboo wood wooden oak walnut maple pine teak birch mahogany metal steel
    stainless aluminum aluminium titanium brass iron plastic rubber silicone glass ceramic porcelain stoneware
    marble granite concrete carbon fiberglass vinyl pvc foam latex goretex kevlar mesh corduroy tweed chiffon lace
    sterling platinum pearl diamond crystal quartz neoprene polyurethane cork jute hemp rattan wicker
    """.split()
)

# Features as phrases of normalised words (lower case, hyphens as spaces): "water-resistant" is "water resistant".
FEATURES = frozenset(
    """
    waterproof|water resistant|weatherproof|windproof|breathable|insulated|wireless|bluetooth|rechargeable|cordless
    |organic|handmade|vegan|recycled|adjustable|foldable|collapsible|machine washable|dishwasher safe|nonstick
    |non stick|hypoallergenic|gluten free|biodegradable|stain resistant|scratch resistant|shockproof|dustproof
    |non slip|anti slip|slip resistant|reflective|polarized|polarised|noise cancelling|noise canceling|usb|usb c
    |wifi|4k|hd|led|oled|lcd|solar|heated|memory foam|fair trade|bpa free|uv protection|spf|gps|nfc|touchscreen
    |touch screen|cruelty free|lifetime warranty|eco friendly|environmentally friendly|earth friendly|sustainable
    |sustainably|non toxic|nontoxic|compostable|plastic free|lead free|energy efficient|carbon neutral
    |ethically sourced|ethically made
    """.replace("\n", "")
    .strip()
    .split("|")
)

# Spellings that back each other: a record saying "gray" backs an answer saying "grey".
SAME = [
    {"grey", "gray"},
    {"aluminum", "aluminium"},
    {"wood", "wooden"},
    {"gold", "golden"},
    {"multicolor", "multicolour", "multicoloured", "multi color", "multi colour"},
    {"nonstick", "non stick"},
    {"noise cancelling", "noise canceling"},
    {"polarized", "polarised"},
    {"touchscreen", "touch screen"},
    {"goretex", "gore tex"},
    {"wifi", "wi fi"},
    {"handmade", "hand made"},
    {"non slip", "anti slip", "slip resistant"},
    {"eco friendly", "environmentally friendly", "earth friendly"},
    {"sustainable", "sustainably"},
    {"non toxic", "nontoxic"},
]
FORMS: dict[str, frozenset[str]] = {form: frozenset(group) for group in SAME for form in group}

MONTHS = frozenset(
    "january february march april june july august september october november december".split()
)  # "may" only next to a day number (it is also a verb)
WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
DAYS_RELATIVE = frozenset(["tomorrow", "tonight", "yesterday"])

NUMBER_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "twenty": 20,
    "hundred": 100,
}  # "one" is left out: "this one", "one of the best"

# Units of a measure, each spelling to one name: "12-inch", '12"' and "12 in." are (12, "in").
UNITS: dict[str, str] = {}
for _name, _spellings in {
    "in": 'inch inches ″ "',
    "ft": "ft foot feet",
    "cm": "cm centimeter centimeters centimetre centimetres",
    "mm": "mm millimeter millimeters millimetre millimetres",
    "m": "m meter meters metre metres",
    "km": "km kilometer kilometers kilometre kilometres",
    "mi": "mi mile miles",
    "oz": "oz ounce ounces",
    "lb": "lb lbs pound pounds",
    "kg": "kg kilo kilos kilogram kilograms",
    "g": "g gram grams",
    "ml": "ml milliliter milliliters millilitre millilitres",
    "l": "l liter liters litre litres",
    "gal": "gal gallon gallons",
    "qt": "qt quart quarts",
    "gb": "gb",
    "tb": "tb",
    "mb": "mb",
    "mah": "mah",
    "w": "w watt watts",
    "v": "v volt volts",
    "hz": "hz",
    "khz": "khz",
    "ghz": "ghz",
    "mp": "mp megapixel megapixels",
    "mph": "mph",
    "rpm": "rpm",
    "year": "year years yr yrs",
    "month": "month months",
    "week": "week weeks",
    "day": "day days",
    "hour": "hour hours hr hrs",
    "minute": "minute minutes min mins",
    "pack": "pack packs pk",
    "piece": "piece pieces pc pcs",
    "count": "count ct",
    "person": "person persons people",
    "seat": "seat seats seater",
}.items():
    for _s in _spellings.split():
        UNITS[_s] = _name
