def test_backlog_page_lists_open_items(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"44 items" in response.data
