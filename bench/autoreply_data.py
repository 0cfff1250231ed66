"""Deterministic synthetic FAQ and labelled paraphrased queries for bench/autoreply.py."""

from __future__ import annotations

import random

BRANDS = [
    "Aurora",
    "Nimbus",
    "Vertex",
    "Helix",
    "Zephyr",
    "Orion",
    "Lumen",
    "Cobalt",
    "Pioneer",
    "Summit",
    "Falcon",
    "Quartz",
    "Tundra",
    "Mosaic",
    "Juniper",
    "Atlas",
    "Ember",
    "Solstice",
    "Harbor",
    "Kestrel",
]
KINDS = [
    "headphones",
    "router",
    "smartwatch",
    "blender",
    "vacuum",
    "camera",
    "speaker",
    "thermostat",
    "ebike",
    "kettle",
]
# topic -> (question phrasings with {p}, answer with {p})
TOPICS: dict[str, tuple[list[str], str]] = {
    "warranty": (
        [
            "What is the warranty on the {p}?",
            "How long is the {p} warranty?",
            "Is my {p} still covered by warranty?",
        ],
        "The {p} comes with a 2-year limited warranty from the delivery date.",
    ),
    "reset": (
        [
            "How do I reset my {p}?",
            "How can I factory reset the {p}?",
            "Steps to restore the {p} to factory settings",
        ],
        "Hold the power button of the {p} for 10 seconds until the light blinks.",
    ),
    "return": (
        [
            "Can I return my {p}?",
            "How do I send back the {p}?",
            "What is the return policy for the {p}?",
        ],
        "You can return the {p} within 30 days in its original packaging.",
    ),
    "shipping": (
        [
            "How long does shipping take for the {p}?",
            "When will my {p} be delivered?",
            "What are the delivery times for the {p}?",
        ],
        "The {p} ships within 24 hours and arrives in 2 to 5 business days.",
    ),
    "battery": (
        [
            "How long does the {p} battery last?",
            "My {p} battery drains too fast",
            "What is the battery life of the {p}?",
        ],
        "A full charge of the {p} lasts about 20 hours of normal use.",
    ),
    "manual": (
        [
            "Where can I find the {p} user manual?",
            "Is there a PDF manual for the {p}?",
            "Download the instructions for the {p}",
        ],
        "The {p} manual is on our website under Support > Manuals.",
    ),
    "pairing": (
        [
            "How do I connect my {p} to my phone?",
            "The {p} will not pair with bluetooth",
            "Pairing the {p} with the mobile app",
        ],
        "Open the app, tap Add device and hold the {p} pairing button for 3 seconds.",
    ),
    "firmware": (
        [
            "How do I update the {p} firmware?",
            "Is there a software update for my {p}?",
            "Latest firmware version for the {p}",
        ],
        "The {p} updates itself overnight when connected to Wi-Fi.",
    ),
    "parts": (
        [
            "Where can I buy replacement parts for the {p}?",
            "Spare parts for the {p}",
            "I need a new cable for my {p}",
        ],
        "Genuine {p} spare parts are sold in our online shop under Parts.",
    ),
    "price": (
        [
            "How much does the {p} cost?",
            "What is the price of the {p}?",
            "Is the {p} on sale right now?",
        ],
        "The current price of the {p} is shown on its product page.",
    ),
    "cleaning": (
        [
            "How do I clean my {p}?",
            "What is the best way to clean the {p}?",
            "Can I wash the {p} with water?",
        ],
        "Wipe the {p} with a soft damp cloth; never immerse it in water.",
    ),
    "noise": (
        [
            "My {p} is making a strange noise",
            "Why is the {p} so loud?",
            "The {p} makes a buzzing sound",
        ],
        "A noisy {p} usually needs cleaning; if it persists, contact support.",
    ),
    "power": (
        [
            "My {p} will not turn on",
            "The {p} does not power up",
            "The {p} is dead and shows no lights",
        ],
        "Charge the {p} for 30 minutes, then hold the power button for 5 seconds.",
    ),
    "repair": (
        [
            "How do I get my {p} repaired?",
            "Where can I send my {p} for repair?",
            "Do you offer a repair service for the {p}?",
        ],
        "Book a repair for the {p} in your account under Orders > Repair.",
    ),
    "accessories": (
        [
            "What accessories are available for the {p}?",
            "Which cases fit the {p}?",
            "Optional extras for the {p}",
        ],
        "All {p} accessories are listed on its product page.",
    ),
    "stock": (
        [
            "When will the {p} be back in stock?",
            "The {p} is sold out, when can I order it?",
            "Restock date for the {p}",
        ],
        "Sign up on the {p} page to be emailed as soon as it is back in stock.",
    ),
    "abroad": (
        [
            "Can I use the {p} abroad?",
            "Does the {p} work with European voltage?",
            "Using the {p} in another country",
        ],
        "The {p} accepts 100-240 V; you only need a plug adapter abroad.",
    ),
    "setup": (
        [
            "How do I set up my new {p}?",
            "Getting started with the {p}",
            "First time installation of the {p}",
        ],
        "Follow the quick start card in the {p} box, or the setup wizard in the app.",
    ),
    "size": (
        ["What are the dimensions of the {p}?", "How heavy is the {p}?", "How big is the {p}?"],
        "Size and weight of the {p} are listed under Specifications.",
    ),
    "colors": (
        [
            "What colors does the {p} come in?",
            "Is the {p} available in black?",
            "Colour options for the {p}",
        ],
        "The {p} comes in black, white and sage green.",
    ),
}
SYNONYMS = {
    "how": ["how"],
    "buy": ["purchase", "order"],
    "return": ["send back", "refund"],
    "reset": ["restart", "reboot"],
    "manual": ["guide", "handbook"],
    "clean": ["wash"],
    "repaired": ["fixed"],
    "cost": ["price"],
    "connect": ["link", "hook up"],
    "update": ["upgrade"],
    "delivered": ["arrive", "shipped"],
    "noise": ["sound"],
    "phone": ["smartphone", "iphone"],
    "dimensions": ["measurements"],
    "heavy": ["weight"],
    "colors": ["colours"],
    "new": ["brand new"],
    "turn": ["switch"],
}
FILLERS_BEFORE = ["", "", "hi, ", "hello! ", "quick question: ", "please help, ", "hey team - "]
FILLERS_AFTER = ["", "", " thanks", " thank you!", " asap", " please", "??"]
UNRELATED = [
    "I would like to speak with your marketing department about a partnership",
    "Do you sponsor local football clubs",
    "Your website colours look great today",
    "Are you hiring software engineers in Lisbon",
    "Invoice 2024-118 attached for your records",
    "Can we schedule a press interview next week",
    "Unsubscribe me from the newsletter",
    "Who is the CEO of the company",
]


def make_faq(count: int = 2000, seed: int = 7) -> list[tuple[str, list[str], str]]:
    """(id, questions, answer) for `count` entries: product x topic."""
    rng = random.Random(seed)
    products = [f"{b} {k}" for b in BRANDS for k in KINDS]
    pairs = [(p, t) for p in products for t in TOPICS]
    rng.shuffle(pairs)
    out = []
    for product, topic in pairs[:count]:
        questions, answer = TOPICS[topic]
        slug = product.lower().replace(" ", "-")
        out.append(
            (f"{slug}-{topic}", [q.format(p=product) for q in questions], answer.format(p=product))
        )
    return out


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1 :]  # deletion
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # transposition
    return word[:i] + rng.choice("aeioustrn") + word[i + 1 :]  # substitution


def paraphrase(question: str, rng: random.Random) -> str:
    words = question.rstrip("?").split()
    out = []
    for word in words:
        low = word.lower()
        if low in SYNONYMS and rng.random() < 0.5:
            out.append(rng.choice(SYNONYMS[low]))
        else:
            out.append(word)
    if rng.random() < 0.5:
        j = rng.randrange(len(out))
        out[j] = _typo(out[j], rng)
    if rng.random() < 0.3 and len(out) > 3:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]  # reordered words
    if rng.random() < 0.3:
        out = [w for w in out if w.lower() not in {"the", "my", "a", "is"}] or out
    text = " ".join(out)
    if rng.random() < 0.5:
        text = text.lower()
    return rng.choice(FILLERS_BEFORE) + text + rng.choice(FILLERS_AFTER)


def make_queries(
    faq: list[tuple[str, list[str], str]], count: int = 400, seed: int = 11
) -> list[tuple[str, str | None]]:
    """(query, intended entry id or None) pairs; about 1 in 12 is unrelated to any entry."""
    rng = random.Random(seed)
    out: list[tuple[str, str | None]] = []
    for n in range(count):
        if n % 12 == 11:
            out.append((rng.choice(UNRELATED), None))
            continue
        entry_id, questions, _ = rng.choice(faq)
        out.append((paraphrase(rng.choice(questions), rng), entry_id))
    return out
