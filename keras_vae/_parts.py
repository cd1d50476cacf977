"""The lookup shared by the model's part registries (likelihoods, priors,
posteriors)."""

import keras


def lookup(identifier, registry, base, kind, default):
    """A part from None (the `default` class; refused when `default` is
    None), a name in `registry`, a config dict or an instance of `base`.

    Raises:
        ValueError: an unknown name, or an object that is not a `base`.
    """
    if identifier is None and default is not None:
        return default()
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, dict):
        return lookup(keras.saving.deserialize_keras_object(identifier),
                      registry, base, kind, default)
    where = f"keras_vae.{kind}s.{base.__name__}"
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in registry:
            raise ValueError(
                f"Unknown {kind} {identifier!r}. Expected one of "
                f"{sorted(registry)} or a {where} instance."
            )
        return registry[key]()
    none = "None, " if default is not None else ""
    raise ValueError(
        f"A {kind} must be {none}a name, a config dict or a {where} "
        f"instance. Received: {identifier!r} of type "
        f"{type(identifier).__name__}"
    )
