from .helpers import FIXTURES, directory, parse


def test_keys_find_their_creators_email_even_when_the_users_page_comes_later():
    entries = {
        d.value: d for d in directory(parse(FIXTURES / "anthropic_keys_then_users.jsonl", "anthropic_directory"))
    }
    assert (entries["apikey_01AliceKeyR4nD0mZq"].email, entries["apikey_01AliceKeyR4nD0mZq"].label) == (
        "alice@acme.example",
        "alice-dev",
    )
    assert (entries["user_01Alice"].kind, entries["user_01Alice"].email) == ("user_id", "alice@acme.example")


def test_keys_whose_creator_is_unknown_or_null_are_listed_without_an_email_for_an_admin_to_map():
    entries = {
        d.value: d for d in directory(parse(FIXTURES / "anthropic_keys_then_users.jsonl", "anthropic_directory"))
    }
    assert (entries["apikey_03Batch"].email, entries["apikey_03Batch"].label) == (
        "",
        "batch-jobs (created by user user_09Gone)",
    )
    assert (entries["apikey_02Legacy"].email, entries["apikey_02Legacy"].label) == ("", "legacy (no creator)")
    assert {d.provider for d in entries.values()} == {"anthropic"}


def test_keys_name_their_creators_user_id_so_they_follow_it_whatever_file_names_the_user():
    entries = {
        d.value: d for d in directory(parse(FIXTURES / "anthropic_keys_then_users.jsonl", "anthropic_directory"))
    }
    assert entries["apikey_01AliceKeyR4nD0mZq"].owner_user_id == "user_01Alice"
    assert entries["apikey_03Batch"].owner_user_id == "user_09Gone"
    assert entries["apikey_02Legacy"].owner_user_id == ""
