from django.dispatch import Signal

# Sent by `seed_demo` with organization=, user= and base_url= (where the demo serves, ending in '/'), so apps
# can add their own demo data and print their URLs on the demo's address.
demo_seeded = Signal()
