"""State a second replica must see: orders, carts, handoffs, feedback, session states (SHOP_SESSION_STORE_URL)."""

from assistant.stores.carts import MAX_QUANTITY, CartStore
from assistant.stores.demo_orders import seed_demo_orders
from assistant.stores.factory import Stores, make_record_store, open_stores
from assistant.stores.feedback import Feedback, FeedbackStore
from assistant.stores.handoffs import HandoffStore, Ticket
from assistant.stores.orders import RETURN_WINDOW_DAYS, NotAllowed, Order, OrderItem, OrderStore, ReturnInfo
from assistant.stores.records import Record, RecordStore
from assistant.stores.session_control import ControlStore

__all__ = [
    "MAX_QUANTITY",
    "RETURN_WINDOW_DAYS",
    "CartStore",
    "ControlStore",
    "Feedback",
    "FeedbackStore",
    "HandoffStore",
    "NotAllowed",
    "Order",
    "OrderItem",
    "OrderStore",
    "Record",
    "RecordStore",
    "ReturnInfo",
    "Stores",
    "Ticket",
    "make_record_store",
    "open_stores",
    "seed_demo_orders",
]
