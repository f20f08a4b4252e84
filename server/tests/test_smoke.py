def test_companies_lists_the_accounts_companies(api, tenant):
    response = api.get("/companies", auth=tenant.auth)
    assert response.status_code == 200
    assert response.json() == {"companies": [{"id": tenant.company.id, "name": tenant.company.name}]}
