"""A tiny inventory: each item is a dict with a name, a unit price and a quantity."""


def make_item(name, price, quantity=1):
    """Return a new item."""
    return {"name": name, "price": price, "quantity": quantity}


def find_item(items, name):
    """Return the first item called `name`, or None."""
    for item in items:
        if item["name"] == name:
            return item
    return None


def restock(item, amount):
    """Add `amount` to the item's quantity and return the item."""
    item["quantity"] += amount
    return item


def total_value(items):
    """Return the value of the whole stock: the sum of price * quantity over all items.

    >>> total_value([make_item("bolt", 2.0, 3), make_item("nut", 0.5, 4)])
    8.0
    """
