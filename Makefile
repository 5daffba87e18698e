# Developer entry points. `make test` is the README's test command; `make e2e` needs Docker, kind and kubectl.
.PHONY: test e2e image

test:
	python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest -q

image:
	docker build -t org-operator:dev .

e2e:
	hack/kind-e2e.sh
