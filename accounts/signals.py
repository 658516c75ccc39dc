from django.dispatch import Signal

# Sent by `seed_demo` with organization= and user=, so apps can add their own demo data.
demo_seeded = Signal()
