"""Placeholder CLI; replaced by the mock implementation."""


def main() -> None:
    raise SystemExit("qiwi-bill-mock is not implemented yet")


if __name__ == "__main__":
    main()
