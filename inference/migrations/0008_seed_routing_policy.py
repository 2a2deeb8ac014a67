"""The routing policy of `model: "auto"` (cheapest first) and three routes for the by-task
policy, with example utterances an admin edits: small talk and instructions go to the
instruction-tuned SmolLM2; factual questions and text to continue go to Gemma 3 270M, the
larger base model (more knowledge, and a base model continues text as written). The examples
were written for this seed; the labelled evaluation set (bench/data/routing_set.jsonl) was
written apart from them."""

from django.db import migrations

ROUTES = {
    "small-talk": (
        "smollm2-135m",
        [
            "Hi there, how are you today?",
            "Good morning! Did you sleep well?",
            "Thanks a lot, that was really helpful.",
            "I'm feeling a bit bored, talk to me.",
            "Can you cheer me up? I had a rough day.",
            "What do you like to do for fun?",
            "Tell me a joke.",
            "Give me three tips to stay focused while working.",
            "Help me write a polite reply declining a meeting.",
            "Suggest a name for my new puppy.",
            "Can you rephrase this sentence to sound friendlier?",
            "What should I cook for dinner tonight?",
            "Hello! Nice to meet you.",
            "Write a short thank-you note for my neighbour.",
        ],
    ),
    "knowledge": (
        "gemma3-270m",
        [
            "What is the capital of Australia?",
            "Who wrote Pride and Prejudice?",
            "When did the Second World War end?",
            "How far is the Moon from the Earth?",
            "What is the chemical symbol for gold?",
            "Which planet is the largest in the solar system?",
            "Who painted the Mona Lisa?",
            "What language is spoken in Brazil?",
            "How many bones are in the human body?",
            "What is photosynthesis?",
            "In which year did the Berlin Wall fall?",
            "What is the tallest mountain in Africa?",
            "Who discovered penicillin?",
            "What is the boiling point of water in Fahrenheit?",
        ],
    ),
    "continuation": (
        "gemma3-270m",
        [
            "Continue this story: The door creaked open and",
            "Once upon a time, in a village by the sea,",
            "Finish this sentence: The best thing about autumn is",
            "Complete the paragraph: Rain had been falling for three days when",
            "Keep writing from here: She looked at the map one last time and",
            "Write the next line of this poem: The river runs beneath the hill,",
            "It was a dark and stormy night, and the lighthouse keeper",
            "Continue the text: In the year 2150, the first city on Mars",
            "Go on with the tale: The old wizard raised his staff and",
            "Extend this opening: Dear diary, today something strange happened.",
            "The recipe begins: First, preheat the oven to 180 degrees, then",
            "Carry on: The train pulled into the empty station at midnight,",
        ],
    ),
}


def seed(apps, schema_editor):
    policy = apps.get_model("inference", "RoutingPolicy")
    route = apps.get_model("inference", "Route")
    language_model = apps.get_model("inference", "LanguageModel")
    policy.objects.get_or_create(pk=1, defaults={"strategy": "cheapest"})
    for name, (model_name, examples) in ROUTES.items():
        model = language_model.objects.filter(name=model_name).first()
        if model is None or route.objects.filter(name=name).exists():
            continue
        route.objects.create(name=name, model=model, examples="\n".join(examples))


def unseed(apps, schema_editor):
    apps.get_model("inference", "Route").objects.filter(name__in=list(ROUTES)).delete()
    apps.get_model("inference", "RoutingPolicy").objects.filter(pk=1).delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0007_routing_policy")]

    operations = [migrations.RunPython(seed, unseed)]
