select c.customer_id, c.name, count(o.order_id) as orders, sum(o.amount) as total
from {{ ref('customers') }} as c
left join {{ ref('orders') }} as o using (customer_id)
group by c.customer_id, c.name
