from inventory import find_item, make_item, restock, total_value


def test_total_value_of_an_empty_stock_is_zero():
    assert total_value([]) == 0


def test_total_value_multiplies_price_by_quantity():
    items = [make_item("bolt", 2.0, 3), make_item("nut", 0.5, 4)]
    assert total_value(items) == 8.0


def test_total_value_of_one_item():
    assert total_value([make_item("gear", 7, 2)]) == 14


def test_restock_and_find():
    items = [make_item("bolt", 2.0, 3)]
    restock(find_item(items, "bolt"), 2)
    assert find_item(items, "bolt")["quantity"] == 5
    assert find_item(items, "washer") is None
