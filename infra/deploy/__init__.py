"""The deploy tool: clients, the comparison model, one stage per API, plan and apply."""
