"""Storage access: locations (URL + options), the element layer over h5py/zarr, opening stores."""

from .elements import Array, Element, Group
from .location import Location, as_location
from .open import detect_kind, open_root

__all__ = ["Array", "Element", "Group", "Location", "as_location", "detect_kind", "open_root"]
