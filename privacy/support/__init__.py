"""Platform staff (operators) and the support-access grants customers give them."""
