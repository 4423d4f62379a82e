from .helpers import FIXTURES, directory, parse, skipped


def test_users_list_maps_user_ids_to_lower_cased_emails():
    items = parse(FIXTURES / "openai_users.json", "openai_directory")
    assert [(d.provider, d.kind, d.value, d.email, d.label) for d in directory(items)] == [
        ("openai", "user_id", "user-Qm3AliceXyZ9", "alice@acme.example", "Alice Adams")
    ]
    # A pending invite without an email is counted, not an error.
    assert len(skipped(items)) == 1


def test_project_keys_map_to_their_owners_email_and_service_account_keys_keep_a_label():
    entries = directory(parse(FIXTURES / "openai_project_api_keys.json", "openai_directory"))
    assert [(d.kind, d.value, d.email, d.label) for d in entries] == [
        ("api_key", "key_AliceKey01", "alice@acme.example", "Alice laptop"),
        ("api_key", "key_CiKey02", "", "CI key (owned by ci-bot)"),
    ]


def test_a_bare_array_of_users_is_read_too(tmp_path):
    bare = tmp_path / "users.json"
    bare.write_text('[{"object":"organization.user","id":"user-1","email":"X@Acme.example","name":"X"}]')
    assert [d.email for d in directory(parse(bare, "openai_directory"))] == ["x@acme.example"]


def test_project_keys_name_their_owners_user_id_so_they_follow_it_and_service_accounts_name_none():
    entries = directory(parse(FIXTURES / "openai_project_api_keys.json", "openai_directory"))
    assert [(d.value, d.owner_user_id) for d in entries] == [
        ("key_AliceKey01", "user-Qm3AliceXyZ9"),
        ("key_CiKey02", ""),
    ]
